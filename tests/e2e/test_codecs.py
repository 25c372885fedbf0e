"""A video in H.264, AV1 and HEVC through the real Airflow stack (issue 24): Airflow's REST trigger with
``codecs``, the mapped transcode, publish, the catalog, the plugin's API and the video page in Chromium. Every CMAF
track's init segment and first media segment are read back with ffprobe (codec, profile, level, bit depth, a
keyframe first); the master parses with ``m3u8`` and the MPD with ``mpegdash``; every variant's CODECS is what
ffprobe says its track is; every codec's segments last as long as H.264's."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import m3u8
import pytest
import requests

from tests.e2e.pages import page_findings
from vodflow import layout
from vodflow.devtools.client import ApiError
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.package import dash

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
CODECS = ["h264", "av1", "hevc"]
FAMILY = {"avc1": "h264", "avc3": "h264", "av01": "av1", "hvc1": "hevc", "hev1": "hevc"}
H264_PROFILES = {"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "High": 100}
AV1_PROFILES = {"Main": 0, "High": 1, "Professional": 2}
HEVC_PROFILES = {"Main": 1, "Main 10": 2}


def _get(stack, path: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.airflow.base_url}/vodflow{path.removeprefix('/vodflow')}", timeout=30,
                        params=params, headers={"Authorization": f"Bearer {stack.client.token()}"})


def rows_codec(rows: list[dict], name: str) -> str:
    return next(r["codec"] for r in rows if r["name"] == name)


def probe_track(folder: Path, segment: str) -> dict:
    """ffprobe of a track's init segment followed by one media segment: the stream and its first frame."""
    joined = folder / f"probe-{segment}.mp4"
    joined.write_bytes((folder / "init.mp4").read_bytes() + (folder / segment).read_bytes())
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",  # noqa: S603
                          "-show_entries", "stream=codec_name,profile,level,pix_fmt:frame=key_frame,pict_type",
                          "-of", "json", str(joined)], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    return {**found["streams"][0], "first_frame": found["frames"][0]}


def implied_by_ffprobe(codec: str, stream: dict) -> tuple:
    """What an RFC 6381 video codec string says, and what ffprobe says, as comparable tuples
    (family, profile, level, bit depth)."""
    parts = codec.split(".")
    depth = 10 if "10" in stream["pix_fmt"] else 8
    family = FAMILY[parts[0]]
    if family == "h264":
        said = (family, int(parts[1][0:2], 16), int(parts[1][4:6], 16), 8)
        seen = (stream["codec_name"], H264_PROFILES[stream["profile"]], stream["level"], depth)
    elif family == "av1":  # av01.P.LLT.DD
        said = (family, int(parts[1]), int(parts[2][:2]), int(parts[3]))
        seen = (stream["codec_name"], AV1_PROFILES[stream["profile"]], stream["level"], depth)
    else:  # hvc1.[A-C]?P.compat.[LH]level.constraints
        said = (family, int(parts[1].lstrip("ABC")), int(parts[3][1:]), 10 if parts[1].lstrip("ABC") == "2" else 8)
        seen = (stream["codec_name"], HEVC_PROFILES[stream["profile"]], stream["level"], depth)
    return said, seen


@pytest.mark.parametrize("codecs", [["h264", "vp8"], "vp8", {"av1": True}, 42, []])
def test_an_unknown_codec_or_a_wrong_type_is_refused_at_trigger(embedded_stack, codecs):
    for _ in range(4):  # the embedded stack's SQLite can be locked by the dag-processor for a moment (a 500)
        with pytest.raises(ApiError) as caught:
            embedded_stack.client.trigger(DAG, {"source": "s3://vodflow/uploads/a.mp4", "codecs": codecs})
        if caught.value.status_code < 500:
            break
        time.sleep(2)
    assert caught.value.status_code == 400 and "codecs" in str(caught.value.detail), caught.value.detail


def test_a_video_in_three_codecs(embedded_stack, tmp_path):
    stack = embedded_stack
    source = make_sample(str(tmp_path / "three.mp4"), SampleSpec(640, 360, 6.0, "30", audio=True))
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/three.mp4"
    stack.storage.client.upload_file(source, "vodflow", key)
    # A run id of our own: a trigger answered 500 (the embedded stack's SQLite locked for a moment on a loaded
    # machine) is sent again safely.
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "ladder": ["360p", "240p"],
                                        "codecs": CODECS}, run_id=f"codecs-{uuid.uuid4().hex[:8]}", attempts=4)
    assert stack.client.wait_for_run(DAG, run_id, timeout=900)["state"] == "success"
    video_id = _get(stack, "/api/videos", run_id=run_id).json()["videos"][0]["id"]
    video = _get(stack, f"/api/videos/{video_id}").json()
    assert video["status"] == "ready", video["error_message"]

    # The catalog and the API: every rendition with its codec and range, the bytes of each codec's ladder.
    rows = stack.catalog.get_renditions(video_id, 1)
    assert [(r["name"], r["codec"], r["dynamic_range"], r["status"]) for r in rows] == [
        (f"{c}-{rung}" if c != "h264" else rung, c, "SDR", "done") for c in CODECS for rung in ("360p", "240p")]
    assert [(r["name"], r["codec"], r["dynamic_range"]) for r in video["renditions"]] == [
        (r["name"], r["codec"], r["dynamic_range"]) for r in rows]
    assert video["codecs"] == CODECS
    assert video["bytes_by_codec"] == {c: sum(r["bytes"] for r in rows if r["codec"] == c) for c in CODECS}
    assert set(video["cmaf_master_urls"]) == set(CODECS)
    assert video["cmaf_master_urls"]["av1"].endswith("/v1/cmaf/master-av1.m3u8")

    # The CMAF tree: one master and one MPD over every codec, each codec's own master too.
    prefix = layout.version_prefix(video_id, 1)
    stack.storage.download_tree(prefix, str(tmp_path / "tree"))
    cmaf = tmp_path / "tree" / "cmaf"
    master = m3u8.loads(_get(stack, video["cmaf_master_url"]).text)
    videos = [p for p in master.playlists if p.stream_info.resolution]
    assert {v.uri.split("/")[0] for v in videos} == {r["name"] for r in rows}
    assert videos[0].uri.split("/")[0] in ("360p", "240p")  # H.264 first: the fallback an old player takes
    for codec in CODECS:
        own = m3u8.loads(_get(stack, video["cmaf_master_urls"][codec]).text)
        names = {p.uri.split("/")[0] for p in own.playlists if p.stream_info.resolution}
        assert names == {r["name"] for r in rows if r["codec"] == codec}, (codec, names)
    mpd = dash.parse_mpd(_get(stack, video["dash_url"]).text)
    video_sets = [a for a in mpd.periods[0].adaptation_sets if (a.mime_type or "").startswith("video")
                  or any((r.mime_type or "").startswith("video") for r in a.representations)]
    assert len(video_sets) == 3  # one AdaptationSet per codec
    mpd_codecs = {r.id: r.codecs or a.codecs for a in video_sets for r in a.representations}
    tracks = {r["name"]: json.loads((cmaf / r["name"] / "track.json").read_text()) for r in rows}
    assert video["video_bytes_by_codec"] == {c: sum(t["init_size"] + sum(s["size"] for s in t["segments"])
                                                    for n, t in tracks.items() if rows_codec(rows, n) == c)
                                             for c in CODECS}
    print("CMAF video bytes per codec:", video["video_bytes_by_codec"], "as encoded:", video["bytes_by_codec"])

    # Every track read back: codec, profile, level and bit depth as its CODECS says; a keyframe first.
    durations = {}
    for variant in videos:
        name = variant.uri.split("/")[0]
        media = m3u8.loads((cmaf / variant.uri).read_text())
        durations[name] = [round(s.duration, 3) for s in media.segments]
        video_codec = next(c for c in variant.stream_info.codecs.split(",") if c.split(".")[0] in FAMILY)
        assert mpd_codecs[name] == video_codec, (name, mpd_codecs[name], video_codec)
        stream = probe_track(cmaf / name, media.segments[-1].uri)
        said, seen = implied_by_ffprobe(video_codec, stream)
        assert said == seen, (name, video_codec, stream)
        assert stream["first_frame"]["key_frame"] == 1, (name, stream)
        assert variant.stream_info.video_range == "SDR"
        row = next(r for r in rows if r["name"] == name)
        if row["codec"] != "h264":  # measured from the CMAF track as the master lists it (H.264's: the TS tree's)
            assert (row["bandwidth"], row["average_bandwidth"]) == (
                variant.stream_info.bandwidth, variant.stream_info.average_bandwidth), (name, row)
            assert row["playlist_uri"].endswith(f"/cmaf/{name}/index.m3u8")
    h264 = durations["360p"]
    assert sum(h264) == pytest.approx(6.0, abs=0.05)
    for name, found in durations.items():  # the same 6 s grid in every codec
        assert found == pytest.approx(h264, abs=0.5 / 30), (name, found, h264)

    # The video page: renditions per codec, bytes and saving, and each codec's ladder playable.
    findings = page_findings(stack, "codecspage.mjs", video_id)
    assert [g.split(":")[0] for g in findings["groups"]] == ["H.264", "AV1", "HEVC"], findings
    assert "% vs H.264" in findings["groups"][1], findings
    assert findings["summary"].startswith("Video bytes per codec (CMAF tracks): H.264: "), findings
    assert [(r["codec"], r["range"]) for r in findings["rows"]] == [(r["codec"], "SDR") for r in rows]
    assert [o["value"] for o in findings["options"]] == ["", *CODECS]
    assert findings["playing"]["err"] is None and "AV1 ladder" in findings["note"], findings
    assert findings["requests"] and all(r.startswith(("av1-", "aac-", "master-av1")) for r in findings["requests"]), \
        findings["requests"]
    hevc = next(o for o in findings["options"] if o["value"] == "hevc")
    assert hevc["disabled"] == (not findings["hevc_supported"])  # Chromium on Linux: HEVC only with hardware
