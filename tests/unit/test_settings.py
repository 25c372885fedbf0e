"""The settings loader as derived from the ``Settings`` fields: every key read, each by its rule (the rules of the
loader it replaced, written out here), the declared defaults when nothing is configured, and every key in the
docs' Configuration table. Pure: a stand-in for Airflow's configuration, no environment."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vodflow import settings
from vodflow.media.options import EncoderSettings, Limits, QualityPolicy
from vodflow.settings import Settings, load_settings, setting_keys

DOCS = Path(__file__).resolve().parents[2] / "docs"


class Conf:
    """Airflow's ``conf.get`` over a dict: the fallback when a key is not configured."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, section: str, key: str, fallback: Any = None) -> Any:
        assert section == settings.SECTION
        return self.values.get(key, fallback)


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch):
    def loaded(**values: str) -> Settings:
        monkeypatch.setattr(settings, "_conf", lambda: Conf(values))
        load_settings.cache_clear()
        return load_settings()

    yield loaded
    load_settings.cache_clear()


def test_nothing_configured_is_the_declared_defaults(load) -> None:
    assert load() == Settings()
    assert (Settings().limits, Settings().encoder, Settings().quality) == (Limits(), EncoderSettings(), QualityPolicy())


def test_every_key_is_read(load) -> None:
    for key in setting_keys():
        assert load(**{key: "1"}) != Settings() or load(**{key: "7"}) != Settings(), key


def test_text_flags_and_urls(load) -> None:
    loaded = load(bucket="media", public_base_url="https://cdn.example.com/v//", ui_base_url="https://af/",
                  upload_events_queue="  https://sqs/q \n", webhook_secret=" s ")
    assert (loaded.bucket, loaded.public_base_url, loaded.ui_base_url) == ("media", "https://cdn.example.com/v",
                                                                           "https://af")
    assert (loaded.upload_events_queue, loaded.webhook_secret) == ("https://sqs/q", " s ")
    assert [load(adaptive_ladder=text).adaptive_ladder for text in (" YES ", "true", "1", "on", "no", "")] == [
        True, True, True, False, False, False]


def test_numbers_counts_and_floors(load) -> None:
    assert load(chunk_seconds="12.5").chunk_seconds == 12.5
    assert load(keep_old_versions="2.7").keep_old_versions == 2  # a count from a number: the fraction is cut off
    assert load(multipart_threshold_bytes="1e8").multipart_threshold_bytes == 100_000_000
    assert load(reprocess_outdated_per_run="0").reprocess_outdated_per_run == 0
    floors = load(max_active_videos="0", max_items_per_video="-3", webhook_attempts="0", caption_max_bytes="0",
                  webhook_deadline_seconds="0.2")
    assert (floors.max_active_videos, floors.max_items_per_video, floors.webhook_attempts,
            floors.caption_max_bytes, floors.webhook_deadline_seconds) == (1, 1, 1, 1, 1.0)
    with pytest.raises(ValueError):
        load(chunk_seconds="half a minute")


def test_lists(load) -> None:
    loaded = load(source_buckets=" a, b ,,c ", notify_email="", webhook_allowed_hosts="hooks.internal")
    assert (loaded.source_buckets, loaded.notify_email, loaded.webhook_allowed_hosts) == (("a", "b", "c"), (),
                                                                                          ("hooks.internal",))
    assert load(outputs=" , ", mp4_renditions="").outputs == ("hls",)  # a list naming nothing: the default
    assert load(outputs="hls,cmaf", mp4_renditions="720p, 360p").mp4_renditions == ("720p", "360p")


def test_media_groups(load) -> None:
    loaded = load(max_duration_seconds="120", max_size_bytes="1e3", min_dimension="32", x264_preset="slow",
                  encoder_threads="2", encode_timeout_per_source_second="1.5", vmaf_targets="93, 80,",
                  vmaf_jnd="4")
    assert loaded.limits == replace(Limits(), max_duration=120.0, max_size_bytes=1000, min_dimension=32)
    assert loaded.encoder == replace(EncoderSettings(), preset="slow", threads=2, timeout_per_source_second=1.5)
    assert loaded.quality == replace(QualityPolicy(), targets=(93.0, 80.0), jnd=4.0)
    with pytest.raises(ValueError, match="vmaf_targets"):
        load(vmaf_targets="")


def test_every_key_is_in_the_docs_configuration_table() -> None:
    """A table row's first cell names its keys (`a` / `b`); every key of the section is in one."""
    documented: set[str] = set()
    for page in DOCS.glob("*.md"):
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.startswith("|") and line.count("|") >= 3:
                documented.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    assert [key for key in setting_keys() if key not in documented] == []


def test_loudness_target_and_ceiling(load) -> None:
    """Off unless a number is configured; "off" and friends say so explicitly."""
    assert Settings().loudness is None and Settings().loudness_true_peak == -1.0
    assert load(loudness=" -16 ").loudness == -16.0
    assert [load(loudness=text).loudness for text in ("off", "false", "None", "")] == [None] * 4
    assert load(loudness_true_peak="-2").loudness_true_peak == -2.0
    with pytest.raises(ValueError):
        load(loudness="loud")
