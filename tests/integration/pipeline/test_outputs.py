"""Optional outputs (downloads, storyboard) through the real pipeline: real ffmpeg, S3 over HTTP, the catalog."""

from __future__ import annotations

import itertools
import json
import re
import struct
import subprocess
import uuid
from pathlib import Path

import m3u8
import pytest

from vodflow import errors, layout, pipeline
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.errors import BadInput

from .helpers import run_all, upload

pytestmark = pytest.mark.integration
ALL_MINE = ["hls", "mp4", "audio", "storyboard"]
CUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """13 s of 640x360 with sound: three segments, 13 storyboard tiles."""
    return Path(make_sample(str(tmp_path_factory.mktemp("outputs") / "clip.mp4"),
                            SampleSpec(640, 360, 13.0, "30", audio=True)))


def _ffprobe(path: Path, entries: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        boxes.append(kind.decode("latin-1"))
        at += size if size else len(data)
    return boxes


def decoded_seconds(path: Path) -> float:
    """How long the audio lasts as a player decodes it: samples out of the decoder (encoder delay and padding
    skipped, as the MP3's LAME header and the M4A's edit list say), over the sample rate."""
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000",  # noqa: S603
                          "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return len(pcm) / 2 / 48000


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """A strict reading of the storyboard's WebVTT: the header, then cues of a timing line and one payload."""
    blocks = text.strip("\n").split("\n\n")
    assert blocks[0] == "WEBVTT"
    cues = []
    for block in blocks[1:]:
        timing, payload = block.split("\n")
        match = CUE.match(timing)
        assert match, timing
        g = [int(x) for x in match.groups()]
        cues.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000,
                     payload))
    return cues


def _run(services, clip: Path, tmp_path: Path, **conf) -> tuple[pipeline.Job, str, Path]:
    key = f"uploads/{uuid.uuid4().hex[:6]}/clip.mp4"
    run = run_all(services, {"source": upload(services, clip, key), **conf}, f"run-{uuid.uuid4().hex[:6]}")
    job = run["job"]
    prefix = layout.version_prefix(job.video_id, job.version)
    services.storage.download_tree(prefix, str(tmp_path))
    return job, prefix, tmp_path


def test_downloads_and_storyboard_are_published_and_recorded(services, clip, tmp_path):
    job, prefix, local = _run(services, clip, tmp_path, title='Été "2026": a/b', ladder=["360p", "240p"],
                              outputs=ALL_MINE, mp4_renditions="all")
    keys = set(services.storage.list_keys(prefix))
    audio = "audio/Ete-2026-a-b"  # a key-safe name from the title
    assert {f"{prefix}{n}" for n in ("mp4/360p.mp4", "mp4/240p.mp4", f"{audio}.m4a", f"{audio}.mp3")} <= keys
    assert {f"{prefix}storyboard/sprite_000.jpg", f"{prefix}storyboard/storyboard.vtt"} <= keys
    assert not [k for k in keys if "/tiles/" in k or k.startswith(f"{prefix}chunks/")]
    renditions = {r["name"]: r for r in services.catalog.get_renditions(job.video_id, job.version)}
    source_audio = float(_ffprobe(clip, "stream=codec_type,duration")["streams"][1]["duration"])

    for name in ("360p", "240p"):  # MP4: index first, both streams copied, as long as the rendition
        mp4 = local / "mp4" / f"{name}.mp4"
        boxes = top_level_boxes(mp4)
        assert boxes.index("moov") < boxes.index("mdat"), boxes
        streams = _ffprobe(mp4, "stream=codec_name,width,height,duration:format=duration")
        assert [s["codec_name"] for s in streams["streams"]] == ["h264", "aac"]
        assert streams["streams"][0]["width"] == renditions[name]["width"]
        playlist = m3u8.load(str(local / "hls" / name / "index.m3u8"))
        rendition_seconds = sum(s.duration for s in playlist.segments)
        # The picture lasts as long as the rendition's, to a frame; the file as long, to an AAC frame's padding.
        assert abs(float(streams["streams"][0]["duration"]) - rendition_seconds) <= 1 / 30 + 1e-6
        assert abs(float(streams["format"]["duration"]) - rendition_seconds) <= 0.050
    for fmt, codec in (("m4a", "aac"), ("mp3", "mp3")):
        path = local / f"{audio}.{fmt}"
        assert _ffprobe(path, "stream=codec_name")["streams"] == [{"codec_name": codec}]
        assert abs(decoded_seconds(path) - source_audio) <= 0.050, (fmt, decoded_seconds(path), source_audio)
    boxes = top_level_boxes(local / f"{audio}.m4a")
    assert boxes.index("moov") < boxes.index("mdat")

    expected = {"mp4/360p.mp4": "video/mp4", f"{audio}.m4a": "audio/mp4", f"{audio}.mp3": "audio/mpeg",
                "storyboard/sprite_000.jpg": "image/jpeg", "storyboard/storyboard.vtt": "text/vtt"}
    for name, mime in expected.items():
        head = services.storage.client.head_object(Bucket="vodflow", Key=f"{prefix}{name}")
        assert head["ContentType"] == mime
        if not name.startswith("storyboard"):  # a safe name from the title: no quote, slash or colon
            suffix = " (360p).mp4" if name.endswith(".mp4") else name[-4:]
            assert head["ContentDisposition"] == layout.content_disposition(f"Ete _2026_ a_b{suffix}".replace(
                "Ete", "Été"))
            assert head["ContentDisposition"].startswith(f'attachment; filename="Ete _2026_ a_b{suffix}"')

    cues = parse_vtt((local / "storyboard" / "storyboard.vtt").read_text())
    duration = rendition_seconds
    assert cues[0][0] == 0 and abs(cues[-1][1] - duration) < 0.002
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues)), "cues must leave no gap"
    sheets = {}
    for start, end, payload in cues:
        assert end > start
        sprite, region = payload.split("#xywh=")
        x, y, w, h = (int(v) for v in region.split(","))
        if sprite not in sheets:
            size = _ffprobe(local / "storyboard" / sprite, "stream=width,height")["streams"][0]
            sheets[sprite] = (size["width"], size["height"])
        assert x >= 0 and y >= 0 and x + w <= sheets[sprite][0] and y + h <= sheets[sprite][1], payload
        assert (w, h) == (160, 90)

    rows = {(o["kind"], o["name"]): o for o in services.catalog.get_outputs(job.video_id, job.version)}
    assert {("hls", "master"), ("mp4", "360p"), ("mp4", "240p"), ("audio", "m4a"), ("audio", "mp3"),
            ("storyboard", "sprite_000"), ("storyboard", "vtt")} == set(rows)
    for (kind, _name), row in rows.items():
        if kind != "hls":
            assert row["bytes"] == (local / row["key"][len(prefix):]).stat().st_size
    assert rows[("mp4", "360p")]["codecs"] == renditions["360p"]["codecs"]
    assert rows[("hls", "master")]["bytes"] == sum(r["bytes"] for r in renditions.values())


def test_a_chunked_run_makes_its_downloads_from_the_join(services, clip, tmp_path):
    job, _, local = _run(services, clip, tmp_path, ladder=["240p"], chunk_seconds=6,
                              outputs=["hls", "mp4", "webm", "audio", "storyboard"])
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    mp4 = local / "mp4" / "240p.mp4"
    playlist = m3u8.load(str(local / "hls" / "240p" / "index.m3u8"))
    duration = float(_ffprobe(mp4, "stream=duration")["streams"][0]["duration"])
    assert abs(duration - sum(s.duration for s in playlist.segments)) <= 1 / 30 + 1e-6
    webm = _ffprobe(local / "webm" / "240p.webm", "stream=codec_name,start_time:format=duration")
    assert [(s["codec_name"], float(s["start_time"]) if s["codec_name"] == "av1" else None)
            for s in webm["streams"]] == [("av1", 0.0), ("opus", None)]  # from the join: the first picture at 0
    assert abs(float(webm["format"]["duration"]) - sum(s.duration for s in playlist.segments)) <= 1 / 30 + 1e-6
    assert (local / "audio" / "clip.mp3").exists() and (local / "storyboard" / "storyboard.vtt").exists()
    assert {o["kind"] for o in services.catalog.get_outputs(job.video_id, job.version)} == {
        "hls", "mp4", "webm", "audio", "storyboard"}


def test_a_silent_video_gets_no_audio_downloads_and_no_error(services, media, tmp_path):
    job, prefix, local = _run(services, media["no_audio"], tmp_path, ladder=["240p"],
                              outputs=["hls", "mp4", "audio"])
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    assert services.storage.list_keys(f"{prefix}audio/") == []
    assert [k[len(prefix):] for k in services.storage.list_keys(f"{prefix}mp4/")] == ["mp4/240p.mp4"]
    assert _ffprobe(local / "mp4" / "240p.mp4", "stream=codec_name")["streams"] == [{"codec_name": "h264"}]


def test_outputs_off_by_default_keep_todays_tree_exactly(services, media, tmp_path):
    """Today's tree, derived from what the playlists reference: nothing more, nothing less."""
    job, prefix, local = _run(services, media["small"], tmp_path)
    assert job.outputs == ["hls"]
    keys = {k[len(prefix):] for k in services.storage.list_keys(prefix)}
    master = m3u8.load(str(local / "hls" / "master.m3u8"))
    expected = {"hls/master.m3u8"}
    for variant in master.playlists:
        folder = variant.uri.rsplit("/", 1)[0]
        expected |= {f"hls/{variant.uri}", f"hls/{folder}/iframes.m3u8"}
        expected |= {f"hls/{folder}/{s.uri}" for s in m3u8.load(str(local / "hls" / variant.uri)).segments}
    thumbs = {k for k in keys if k.startswith("thumbs/")}
    assert "thumbs/poster.jpg" in thumbs and all(re.fullmatch(r"thumbs/(poster|\d{3})\.jpg", k) for k in thumbs)
    # The early tree of a first version (early playback): its EVENT playlists and the lead-in pieces they list
    # (the first 6 s in 2 s pieces), then the VOD's own segments.
    early = {"early/master.m3u8"}
    listings = {}
    for variant in master.playlists:
        folder = variant.uri.rsplit("/", 1)[0]
        listings[folder] = m3u8.loads(services.storage.get_bytes(f"{prefix}early/{folder}/index.m3u8").decode())
        pieces = {f"early/{folder}/{s.uri}" for s in listings[folder].segments if not s.uri.startswith("../")}
        assert 1 <= len(pieces) <= 3, pieces
        early |= {f"early/{folder}/index.m3u8"} | pieces
    assert keys == expected | thumbs | early
    for variant in master.playlists:
        folder = variant.uri.rsplit("/", 1)[0]
        listed = listings[folder]
        vod = m3u8.load(str(local / "hls" / variant.uri)).segments
        lead = [s for s in listed.segments if not s.uri.startswith("../")]
        assert sum(s.duration for s in lead) == pytest.approx(vod[0].duration, abs=1 / 30)
        assert listed.is_endlist and [s.uri for s in listed.segments[len(lead):]] == [
            f"../../hls/{folder}/{s.uri}" for s in vod[1:]]
    assert [o["kind"] for o in services.catalog.get_outputs(job.video_id, job.version)] == ["hls"]


def test_an_unknown_conf_key_fails_the_run_before_anything_is_encoded(services, media):
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/typo.mp4")
    with pytest.raises(BadInput) as caught:
        pipeline.register({"source": source, "ladderr": ["240p"]}, "run-typo", services)
    assert caught.value.code == errors.INVALID_REQUEST
    assert "'ladderr'" in str(caught.value)


def test_webm_downloads_are_published_and_listed_with_their_sizes(services, media, tmp_path):
    from starlette.requests import Request

    from vodflow.web.api import outputs_json

    job, prefix, local = _run(services, media["small"], tmp_path, title='Clip "1"/x', ladder=["240p"],
                              outputs=["hls", "mp4", "webm"])
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    assert [k[len(prefix):] for k in services.storage.list_keys(f"{prefix}webm/")] == ["webm/240p.webm"]
    path = local / "webm" / "240p.webm"
    streams = _ffprobe(path, "stream=codec_name,width,height,sample_rate:format=duration")
    assert [(s["codec_name"], s.get("sample_rate")) for s in streams["streams"]] == [("av1", None),
                                                                                     ("opus", "48000")]
    rendition = sum(s.duration for s in m3u8.load(str(local / "hls" / "240p" / "index.m3u8")).segments)
    assert abs(float(streams["format"]["duration"]) - rendition) <= 1 / 30 + 1e-6
    head = services.storage.client.head_object(Bucket="vodflow", Key=f"{prefix}webm/240p.webm")
    assert head["ContentType"] == "video/webm"
    assert head["ContentDisposition"] == layout.content_disposition("Clip _1_x.webm")  # quote and slash folded

    rows = services.catalog.get_outputs(job.video_id, job.version)
    row = next(o for o in rows if o["kind"] == "webm")
    assert (row["name"], row["bytes"], row["content_type"]) == ("240p", path.stat().st_size, "video/webm")
    assert re.fullmatch(r"av01\.0\.\d\dM\.08,opus", row["codecs"]) and abs(row["duration"] - rendition) <= 1 / 30
    listed = outputs_json(Request({"type": "http", "root_path": "/vodflow", "headers": []}), job.video_id, rows)
    assert [(d["kind"], d["name"]) for d in listed["downloads"]] == [("mp4", "240p"), ("webm", "240p")]
    webm = listed["downloads"][1]
    assert webm["bytes"] == path.stat().st_size and webm["content_type"] == "video/webm"
    assert webm["url"] == f"/vodflow/api/videos/{job.video_id}/media/v{job.version}/webm/240p.webm"
