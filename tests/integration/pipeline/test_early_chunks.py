"""Early playback of a chunked run, on real ffmpeg, S3 over HTTP and Postgres: the chunks' segments and the audio
item's become EVENT playlists that only ever grow, list contiguous segments in timeline order whatever order the
items finish in, reach ENDLIST, and cover the whole video; the VOD version is published as before. Every version
of every playlist object is read back from a versioned bucket: each snapshot a player could have fetched."""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import m3u8
import pytest

from vodflow import layout, pipeline
from vodflow.devtools.conformance import check_tree
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.pipeline.early import EarlyTree
from vodflow.pipeline.early_chunks import adopt_audio
from vodflow.storage import Storage

pytestmark = pytest.mark.integration
BUCKET = "vodflow-early-chunks"
FPS = 30000 / 1001
DURATION = 31.0
TRACKS = ("360p", "240p", "audio")


@pytest.fixture
def versioned(services: pipeline.Services) -> pipeline.Services:
    """The services writing to a bucket of their own that keeps every version of every object."""
    client = services.storage.client
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return replace(services, settings=replace(services.settings, bucket=BUCKET),
                   storage=Storage(services.settings.aws_conn_id, BUCKET))


def snapshots(services: pipeline.Services, key: str) -> list[str]:
    """Every text the object ever had, oldest first."""
    versions = services.storage.client.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    mine = [v for v in versions if v["Key"] == key]  # newest first, as S3 lists them
    return [services.storage.client.get_object(Bucket=BUCKET, Key=key, VersionId=v["VersionId"])["Body"].read()
            .decode() for v in reversed(mine)]


def _packets(path: Path, kind: str) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries",  # noqa: S603
                          "packet=pts_time", "-of", "json", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return sorted(float(p["pts_time"]) for p in json.loads(out)["packets"])


def test_a_chunked_run_is_playable_in_timeline_order_while_it_is_encoded(versioned, tmp_path):
    services = versioned
    path = make_sample(str(tmp_path / "src.mp4"), SampleSpec(640, 360, DURATION, "30000/1001", audio=True))
    key = f"uploads/{uuid.uuid4().hex[:6]}/src.mp4"
    services.storage.client.upload_file(path, BUCKET, key)
    job, probed, plan, items = pipeline.prepare(
        {"source": f"s3://{BUCKET}/{key}", "chunk_seconds": 12, "ladder": ["360p", "240p"]}, "run-early-chunks",
        lambda step, job: None, services)
    assert [item.label for item in items] == ["audio", "chunk 00", "chunk 01", "chunk 02"]
    prefix = layout.early_prefix(job.video_id, job.version)

    def run(item):
        return pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)

    def listed(track: str) -> list[int]:
        texts = snapshots(services, f"{prefix}{track}/index.m3u8")
        return [int(s.uri[4:9]) for s in m3u8.loads(texts[-1]).segments] if texts else []

    def playable() -> bool:
        return services.catalog.get_video(job.video_id)["playable_version"] == job.version

    results = {}
    # Early seqs: the first 6 s in three 2 s lead-in pieces (0-2), then one per 6 s segment: 3 is 6-12 s (chunk
    # 00), 4 and 5 chunk 01, 6 and 7 chunk 02 (24-30 and 30-31 s).
    # The last chunk first: its segments are up, but nothing may be listed before seq 0 is.
    results[3] = run(items[3])
    assert [listed(t) for t in ("360p", "240p")] == [[], []] and not playable()
    assert len(services.storage.list_keys(f"{prefix}360p/")) == 2  # 24-30 and 30-31 s: uploaded, unlisted
    results[1] = run(items[1])
    assert listed("360p") == [0, 1, 2, 3] and not playable()  # no audio yet
    results[0] = run(items[0])
    assert listed("audio") == list(range(8)) and playable()
    assert listed("360p") == [0, 1, 2, 3]  # seq 4 and 5 (chunk 01) missing: 6, 7 wait behind the gap
    results[2] = run(items[2])
    assert listed("360p") == listed("240p") == list(range(8))
    pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items],
                           [results[i] for i in range(len(items))], services)
    assert services.catalog.get_video(job.video_id)["status"] == "ready"

    master = m3u8.loads(services.storage.get_bytes(prefix + "master.m3u8").decode())
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    assert [m.uri for m in master.media] == ["audio/index.m3u8"]
    local = tmp_path / "early"
    for track in TRACKS:
        texts = snapshots(services, f"{prefix}{track}/index.m3u8")
        for before, after in itertools.pairwise(texts):
            assert after.startswith(before) and after != before  # only ever appended
        final = m3u8.loads(texts[-1])
        assert final.playlist_type == "event" and final.is_endlist and final.media_sequence == 0
        assert [s.uri for s in final.segments] == [f"seg_{seq:05d}.ts" for seq in range(8)]
        assert [round(s.duration) for s in final.segments[:4]] == [2, 2, 2, 6]
        assert all(s.duration <= final.target_duration + 0.5 for s in final.segments)
        assert sum(s.duration for s in final.segments) == pytest.approx(DURATION, abs=2 / FPS)
        (local / track).mkdir(parents=True)
        with open(local / track / "all.ts", "wb") as joined:
            for segment in final.segments:
                joined.write(services.storage.get_bytes(f"{prefix}{track}/{segment.uri}"))

    # The early segments in order are the whole video: no frame lost or doubled at a chunk's or a segment's seam.
    ends = {}
    for track in ("360p", "240p"):
        pts = _packets(local / track / "all.ts", "v")
        assert len(pts) == round(DURATION * FPS)
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert min(steps) == pytest.approx(1 / FPS, abs=1e-3) and max(steps) == pytest.approx(1 / FPS, abs=1e-3)
        ends[track] = (pts[0], pts[-1] + 1 / FPS)
    audio = _packets(local / "audio" / "all.ts", "a")
    steps = [b - a for a, b in itertools.pairwise(audio)]
    assert max(steps) < 1.5 * 1024 / 48000 and min(steps) > 0.5 * 1024 / 48000  # continuous across segments
    video_start, video_end = ends["360p"]
    assert abs(audio[0] + 1024 / 48000 - video_start) < 1 / FPS  # the priming packet is stamped before 0
    assert abs(audio[-1] + 1024 / 48000 - video_end) < 1 / FPS

    # The VOD version: as an unchunked run's rules want it, and its own objects.
    services.storage.download_tree(layout.hls_prefix(job.video_id, job.version), str(tmp_path / "hls"))
    report = check_tree(tmp_path / "hls", expected_duration=DURATION, expect_audio=True)
    assert report.ok, report.summary()
    assert not services.storage.list_keys(layout.chunks_prefix(job.video_id, job.version))


def test_a_per_title_runs_audio_waits_for_the_tree_a_chunk_opens(versioned, tmp_path):
    """A per-title run's ladder is decided in its chunks, so the audio item never opens the tree (its master names
    the rungs): its segments go up all the same, and the chunk that opens the tree adds them and ends the track."""
    services = versioned
    path = make_sample(str(tmp_path / "src.mp4"), SampleSpec(320, 180, 14.0, "30", audio=True))
    key = f"uploads/{uuid.uuid4().hex[:6]}/src.mp4"
    services.storage.client.upload_file(path, BUCKET, key)
    job, probed, plan, items = pipeline.prepare(
        {"source": f"s3://{BUCKET}/{key}", "chunk_seconds": 6, "ladder": ["240p"]}, "run-early-adaptive",
        lambda step, job: None, services)
    job = replace(job, adaptive=True)
    assert items[0].label == "audio"
    pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), items[0].to_dict(), services)
    prefix = layout.early_prefix(job.video_id, job.version)
    names = [f"seg_{seq:05d}.ts" for seq in range(5)]  # 2, 2, 2 s (the lead-in), 6 s, 2 s
    assert [k.rsplit("/", 1)[1] for k in services.storage.list_keys(f"{prefix}audio/")] == names
    assert not services.storage.list_keys(f"{prefix}audio/index.m3u8") and not services.catalog.early_tracks_of(
        job.video_id, job.version)

    tree = EarlyTree.open(services, job, plan)  # what a chunk item does once its ladder is decided
    adopt_audio(services, job, tree, probed)
    final = m3u8.loads(snapshots(services, f"{prefix}audio/index.m3u8")[-1])
    assert [s.uri for s in final.segments] == names and final.is_endlist
    assert sum(s.duration for s in final.segments) == pytest.approx(14.0 + 1024 / 48000)
