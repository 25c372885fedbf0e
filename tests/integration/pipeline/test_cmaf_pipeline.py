"""A run with ``outputs: ["hls", "cmaf"]`` through every step (S3 over HTTP, the Postgres catalog): the CMAF tree is
published under the version prefix next to the TS one, its MPD and fMP4 master recorded with the version, and every
file either manifest names is in the bucket with its Content-Type. Whole and chunked runs make the same tree."""

from __future__ import annotations

import uuid

import m3u8
import pytest

from vodflow import layout
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.package import dash

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def referenced_files(mpd_text: str) -> set[str]:
    """Every init and segment file the MPD addresses (relative to cmaf/)."""
    files = set()
    for adaptation in dash.parse_mpd(mpd_text).periods[0].adaptation_sets:
        for rep in adaptation.representations:
            template = rep.segment_templates[0]
            count = sum((s.r or 0) + 1 for s in template.segment_timelines[0].Ss)
            files.add(template.initialization.replace("$RepresentationID$", rep.id))
            files |= {template.media.replace("$RepresentationID$", rep.id).replace("$Number%05d$", f"{n:05d}")
                      for n in range(template.start_number, template.start_number + count)}
    return files


@pytest.mark.parametrize("chunk_seconds", [None, 6])
def test_cmaf_is_published_with_the_version(services, tmp_path, chunk_seconds):
    sample = make_sample(str(tmp_path / "talk.mp4"), SampleSpec(854, 480, 14.0, "30", audio=True))
    params = {"source": upload(services, tmp_path / "talk.mp4", f"uploads/{uuid.uuid4().hex[:6]}/talk.mp4"),
              "outputs": ["hls", "cmaf"]}
    if chunk_seconds:
        params["chunk_seconds"] = chunk_seconds
    assert sample
    run = run_all(services, params, f"run-cmaf-{chunk_seconds}")
    job = run["job"]
    assert len(run["items"]) == (1 if chunk_seconds is None else 3)  # whole; or two chunks and the audio
    prefix = layout.version_prefix(job.video_id, job.version)
    keys = set(services.storage.list_keys(prefix))
    cmaf = {k[len(prefix) + len("cmaf/"):] for k in keys if k.startswith(prefix + "cmaf/")}
    mpd = services.storage.get_bytes(f"{prefix}cmaf/manifest.mpd").decode()
    names = referenced_files(mpd)
    assert names <= cmaf  # the MPD's files are there…
    master = m3u8.loads(services.storage.get_bytes(f"{prefix}cmaf/master.m3u8").decode())
    for uri in [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]:
        playlist = m3u8.loads(services.storage.get_bytes(f"{prefix}cmaf/{uri}").decode())
        folder = uri.rsplit("/", 1)[0]
        hls_files = {f"{folder}/{playlist.segments[0].init_section.uri}"} | {f"{folder}/{s.uri}"
                                                                               for s in playlist.segments}
        assert hls_files <= names  # …and the fMP4 HLS playlists name the same files
    assert {"480p/init.mp4", "360p/init.mp4", "aac-128k/init.mp4", "aac-96k/init.mp4"} <= cmaf
    assert f"{prefix}hls/master.m3u8" in keys  # the TS tree is still there
    head = services.storage.client.head_object(Bucket="vodflow", Key=f"{prefix}cmaf/480p/seg_00000.m4s")
    assert head["ContentType"] == "video/iso.segment"
    head = services.storage.client.head_object(Bucket="vodflow", Key=f"{prefix}cmaf/manifest.mpd")
    assert head["ContentType"] == "application/dash+xml"
    records = {(o["kind"], o["name"]): o for o in services.catalog.get_outputs(job.video_id, job.version)}
    assert records[("cmaf", "mpd")]["key"] == f"{prefix}cmaf/manifest.mpd"
    assert records[("cmaf", "master")]["key"] == f"{prefix}cmaf/master.m3u8"
    assert records[("cmaf", "mpd")]["bytes"] == sum(
        services.storage.client.head_object(Bucket="vodflow", Key=f"{prefix}cmaf/{name}")["ContentLength"]
        for name in names)
    cost = [e["detail"]["cost"]["cmaf"] for e in services.catalog.get_events(job.video_id) if e["kind"] == "outputs"]
    assert sum(c["bytes"] for c in cost) > records[("cmaf", "mpd")]["bytes"]  # every uploaded file, track.json too


def test_a_per_title_run_packages_the_ladder_it_encoded(services, tmp_path):
    """The per-title ladder is decided on the transcode worker, after ``prepare`` planned the fixed one: the CMAF
    tree, the MP4 download and the recorded outputs must follow the rungs and rates that were encoded."""
    from vodflow.devtools.samples import make_lecture_sample

    make_lecture_sample(str(tmp_path / "lecture.mp4"), 1280, 720, 8.0)
    params = {"source": upload(services, tmp_path / "lecture.mp4", f"uploads/{uuid.uuid4().hex[:6]}/lecture.mp4"),
              "outputs": ["hls", "cmaf", "mp4"], "adaptive": True}
    run = run_all(services, params, "run-cmaf-per-title")
    job = run["job"]
    prefix = layout.version_prefix(job.video_id, job.version)
    encoded = {r["name"]: r for r in services.catalog.get_renditions(job.video_id, job.version)
               if r["status"] == "done"}
    mpd = dash.parse_mpd(services.storage.get_bytes(f"{prefix}cmaf/manifest.mpd").decode())
    video = [a for a in mpd.periods[0].adaptation_sets if a.content_type == "video" or a.mime_type == "video/mp4"]
    assert sorted(r.id for a in video for r in a.representations) == sorted(encoded)
    top = max(encoded.values(), key=lambda r: r["height"])
    assert f"{prefix}mp4/{top['name']}.mp4" in set(services.storage.list_keys(prefix))
    ts_master = m3u8.loads(services.storage.get_bytes(f"{prefix}hls/master.m3u8").decode())
    cmaf_master = m3u8.loads(services.storage.get_bytes(f"{prefix}cmaf/master.m3u8").decode())
    with_picture = [p for p in cmaf_master.playlists if p.stream_info.resolution]  # and the audio-only variant
    assert len(with_picture) == len(ts_master.playlists) == len(encoded)
