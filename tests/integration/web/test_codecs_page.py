"""The video page of a video in several codecs, on a stubbed API (the page's own files as the plugin serves them,
the body ``api.video_json`` + ``codecs_json`` build), in headless Chromium: renditions grouped per codec with their
dynamic range, each codec's bytes and its saving against H.264, a selector that loads one codec's own master, and
every string from the API put into the page as text. The run through Airflow is tests/e2e/test_codecs.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vodflow.web.codecs_view import codec_outputs, codecs_json

pytestmark = pytest.mark.integration
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"
HOSTILE = '<img src=x onerror="alert(1)">'


def _rendition(name: str, codec: str, size: int, codecs: str, dynamic_range: str = "SDR") -> dict:
    return {"name": name, "codec": codec, "dynamic_range": dynamic_range, "status": "done", "progress": 100.0,
            "width": 640, "height": 360, "video_kbps": 800, "audio_kbps": 96, "bandwidth": None,
            "average_bandwidth": None, "codecs": codecs, "frame_rate": 30.0, "bytes": size, "segments": 1,
            "error_message": None, "updated_at": None, "vmaf": None, "vmaf_p5": None}


def test_the_page_lists_renditions_per_codec_with_the_saving_and_plays_one_codecs_ladder(tmp_path):
    renditions = [_rendition("360p", "h264", 4_000_000, "avc1.64001e,mp4a.40.2"),
                  _rendition("av1-360p", "av1", 1_900_000, "av01.0.04M.10", "PQ"),
                  _rendition("hevc-360p", "hevc", 2_600_000, HOSTILE, "PQ")]
    base = "/vodflow/api/videos/v1/media/v1/cmaf/"
    sizes = {"h264": 3_600_000, "av1": 1_700_000, "hevc": 2_400_000}  # CMAF video tracks: like for like
    listed = [{"kind": "cmaf", "name": f"master-{c}", "bytes": sizes[c], "url": f"{base}master-{c}.m3u8"}
              for c in ("h264", "av1", "hevc")]
    video = {"id": "v1", "title": HOSTILE, "status": "ready", "error_code": None, "error_message": None,
             "source_uri": "s3://vodflow/uploads/a.mp4", "duration": 6.0, "width": 640, "height": 360, "fps": 30,
             "current_version": 1, "latest_version": 1, "dag_run_id": "r1", "retry_refusal": "ready",
             "master_url": "/vodflow/api/videos/v1/media/v1/hls/master.m3u8", "poster_url": None,
             "renditions": renditions, **codecs_json(renditions), "downloads": [], "outputs": [],
             "dash_url": f"{base}manifest.mpd", "cmaf_master_url": f"{base}master.m3u8",
             **codec_outputs(listed), "storyboard_url": None, "events": []}
    (tmp_path / "video.json").write_text(json.dumps(video))
    result = subprocess.run(["node", str(BROWSER_DIR / "codecsstub.mjs"), str(STATIC),  # noqa: S603
                             str(tmp_path / "video.json")], cwd=BROWSER_DIR, capture_output=True, text=True,
                            timeout=120, check=False)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in found, (found, result.stderr[-2000:])
    assert found["groups"] == ["H.264: 3.6 MB", "AV1: 1.7 MB, \u221253 % vs H.264",
                               "HEVC: 2.4 MB, \u221233 % vs H.264"]
    assert found["summary"] == "Video bytes per codec (CMAF tracks): " + " · ".join(found["groups"])
    assert [(r["name"], r["codec"], r["range"]) for r in found["rows"]] == [
        ("360p", "h264", "SDR"), ("av1-360p", "av1", "PQ"), ("hevc-360p", "hevc", "PQ")]
    assert found["rows"][2]["codecs"] == HOSTILE and found["images"] == 0 and not found["injected"]  # text
    assert [o["value"] for o in found["options"]] == ["", "h264", "av1", "hevc"] and not found["select_hidden"]
    assert found["options"][3]["disabled"]  # a codec string no browser decodes: listed, not playable
    assert "AV1 ladder" in found["note"]
    assert "/vodflow/api/videos/v1/media/v1/cmaf/master-av1.m3u8" in found["requests"], found["requests"]
    assert found["list"] == [{"rendition": "360p", "codec": None, "label": "360p"},  # the list page: H.264's rungs,
                             {"rendition": None, "codec": "av1", "label": "AV1"},  # then a line per other codec
                             {"rendition": None, "codec": "hevc", "label": "HEVC"}]
