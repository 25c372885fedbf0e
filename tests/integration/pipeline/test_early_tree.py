"""The early tree against the machine's Postgres and S3 over HTTP: writers on several threads (each its own
catalog connection, as work items on several hosts would be) adding interleaved segments never lose, reorder or
change a playlist line. Every version of every playlist object is read back from a versioned bucket, so each
snapshot a player could have fetched is checked: it is a prefix of the next."""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from dataclasses import replace

import m3u8
import pytest

from vodflow import layout, pipeline
from vodflow.catalog import VERSION_BUILDING
from vodflow.media.encode.ladder import Rendition
from vodflow.media.pictures.thumbnails import PicturePlan
from vodflow.pipeline.early import EarlySegment, EarlyTree
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job
from vodflow.storage import Storage

pytestmark = pytest.mark.integration
BUCKET = "vodflow-early-tree"


@pytest.fixture
def versioned(services: pipeline.Services) -> pipeline.Services:
    """The services with a bucket of their own that keeps every version of every object."""
    client = services.storage.client
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return replace(services, storage=Storage(services.settings.aws_conn_id, BUCKET))


def plan_of(*names: str, chunks: int = 0) -> EncodePlan:
    renditions = tuple(Rendition(name, 64 * (i + 1), 36 * (i + 1), 400, 400, 800, 64, "30")
                       for i, name in enumerate(names))
    return EncodePlan(renditions=renditions, pictures=PicturePlan(0, 1, (16, 9), (), (16, 9)), duration=60.0,
                      chunks=chunks)


def new_job(services: pipeline.Services) -> Job:
    video_id = f"early-{uuid.uuid4().hex[:8]}"
    run_id = f"run-{video_id}"
    version = services.catalog.register(video_id=video_id, source_uri="s3://vodflow/uploads/x.mp4", etag="e",
                                        size=1, title="t", run_id=run_id, ladder_version=1)
    return Job(video_id=video_id, version=version, run_id=run_id, source_uri="s3://vodflow/uploads/x.mp4", etag="e",
               size=1, title="t", ladder="default")


def snapshots(services: pipeline.Services, key: str) -> list[str]:
    """Every text the object ever had, oldest first."""
    versions = services.storage.client.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    mine = [v for v in versions if v["Key"] == key]  # newest first, as S3 lists them
    return [services.storage.client.get_object(Bucket=BUCKET, Key=key, VersionId=v["VersionId"])["Body"].read()
            .decode() for v in reversed(mine)]


def test_concurrent_writers_only_ever_append(versioned):
    services = versioned
    job = new_job(services)
    plan = plan_of("360p", "240p", chunks=4)  # chunked, with audio: three tracks
    count, writers = 24, 4
    segments = [EarlySegment(track, seq, f"seg_{seq:05d}.ts", 6.0 if seq < count - 1 else 3.2)
                for track in ("360p", "240p", "audio") for seq in range(count)]
    random.Random(7).shuffle(segments)
    trees = [EarlyTree.open(services, job, plan) for _ in range(writers)]  # every work item opens it
    assert all(trees)
    barrier = threading.Barrier(writers)

    def writer(tree: EarlyTree, mine: list[EarlySegment]) -> None:
        barrier.wait()
        for segment in mine:
            tree.add([segment])
        for track in ("360p", "240p", "audio"):
            tree.complete(track, count - 1)  # every writer says so: idempotent

    threads = [threading.Thread(target=writer, args=(tree, segments[i::writers])) for i, tree in enumerate(trees)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    prefix = layout.early_prefix(job.video_id, job.version)
    master = m3u8.loads(services.storage.get_bytes(prefix + "master.m3u8").decode())
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    assert [m.uri for m in master.media] == ["audio/index.m3u8"]
    for track in ("360p", "240p", "audio"):
        texts = snapshots(services, f"{prefix}{track}/index.m3u8")
        assert len(texts) >= 2
        for before, after in itertools.pairwise(texts):
            assert after.startswith(before) and after != before  # only appended, and never written for nothing
        final = m3u8.loads(texts[-1])
        assert [s.uri for s in final.segments] == [f"seg_{seq:05d}.ts" for seq in range(count)]
        assert final.is_endlist and texts[-1].count("#EXT-X-ENDLIST") == 1
        obj = services.storage.client.head_object(Bucket=BUCKET, Key=f"{prefix}{track}/index.m3u8")
        assert obj["CacheControl"] == "no-cache" and obj["ContentType"] == "application/vnd.apple.mpegurl"
    video = services.catalog.get_video(job.video_id)
    assert video["playable_version"] == job.version and video["playable_at"] is not None
    assert [e["detail"]["version"] for e in services.catalog.get_events(job.video_id) if e["kind"] == "playable"] \
        == [job.version]


def test_playable_waits_for_the_first_segment_of_every_track(versioned):
    services = versioned
    job = new_job(services)
    tree = EarlyTree.open(services, job, plan_of("360p", "240p"))
    tree.add([EarlySegment("360p", 0, "a.ts", 6.0), EarlySegment("240p", 1, "b.ts", 6.0)])
    assert services.catalog.get_video(job.video_id)["playable_version"] is None
    tree.add([EarlySegment("240p", 0, "c.ts", 6.0)])
    assert services.catalog.get_video(job.video_id)["playable_version"] == job.version
    # A retry's rows for the same seq: same row kept, nothing rewritten.
    tree.add([EarlySegment("240p", 0, "c.ts", 6.0)])
    assert len(snapshots(services, f"{tree.prefix}240p/index.m3u8")) == 1


def test_a_failed_version_clears_playable_and_gets_nothing_more(versioned):
    services = versioned
    job = new_job(services)
    tree = EarlyTree.open(services, job, plan_of("360p"))
    tree.add([EarlySegment("360p", 0, "a.ts", 6.0)])
    assert services.catalog.get_video(job.video_id)["playable_version"] == job.version
    assert services.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code="x",
                                 message="failed")
    video = services.catalog.get_video(job.video_id)
    assert (video["playable_version"], video["playable_at"]) == (None, None)
    assert services.catalog.early_tracks_of(job.video_id, job.version) == {}
    tree.add([EarlySegment("360p", 1, "b.ts", 6.0)])  # a late writer: refused by the version's state
    assert services.catalog.early_tracks_of(job.video_id, job.version) == {}
    assert len(snapshots(services, f"{tree.prefix}360p/index.m3u8")) == 1
    assert EarlyTree.open(services, job, plan_of("360p")) is None


def test_a_rerun_of_a_published_video_is_a_preview_only(versioned):
    services = versioned
    job = new_job(services)
    services.catalog.publish(video_id=job.video_id, run_id=job.run_id, version=job.version,
                             master_uri="s3://vodflow/m.m3u8", poster_uri=None, ladder_version=1)
    rerun = replace(job, run_id="rerun", version=services.catalog.register(
        video_id=job.video_id, source_uri=job.source_uri, etag="e", size=1, title="t", run_id="rerun",
        ladder_version=1))
    tree = EarlyTree.open(services, rerun, plan_of("360p"))
    tree.add([EarlySegment("360p", 0, "a.ts", 6.0)])
    video = services.catalog.get_video(job.video_id)
    assert video["playable_version"] is None and video["current_version"] == job.version
    assert services.catalog.early_tracks_of(job.video_id, rerun.version)["360p"].listed == 1
    assert {v["version"]: v["status"] for v in services.catalog.get_versions(job.video_id)}[rerun.version] \
        == VERSION_BUILDING


def test_off_by_setting(versioned):
    services = replace(versioned, settings=replace(versioned.settings, early_playback=False))
    assert EarlyTree.open(services, new_job(services), plan_of("360p")) is None
