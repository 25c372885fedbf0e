"""Early playback of a whole-video encode, end to end on real ffmpeg, S3 over HTTP and the Postgres catalog:
the EVENT playlists a player could fetch during the encode (polled from S3 as it runs) only ever grow, end with
ENDLIST, and list the first 6 s as three 2 s lead-in pieces, then the VOD version's own segments (the same
bytes, PUT once); the video is playable before it is
ready; a run that fails leaves no early object and no playable flag; a re-run of a ready video is a preview."""

from __future__ import annotations

import collections
import itertools
import json
import logging
import posixpath
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import m3u8
import pytest

from vodflow import layout, pipeline
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.errors import BadInput
from vodflow.storage import ObjectMissing

from .helpers import faststart_sample_and_cut, run_all, upload
from .test_notify import events, webhooks_to_a_receiver

pytestmark = pytest.mark.integration
LADDER = ["360p", "240p"]


@dataclass
class Poller:
    """Fetches the early tree's playlists over and over while a run goes on, as a player would: every distinct
    text of each, in order, and the bytes of each segment when it was first listed."""

    services: pipeline.Services
    prefix: str  # the version's early/ prefix
    tracks: list[str]
    texts: dict[str, list[str]] = field(default_factory=dict)
    first_bytes: dict[str, bytes] = field(default_factory=dict)  # segment key → bytes when first listed
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.texts = {t: [] for t in ["master", *self.tracks]}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _get(self, key: str) -> str | None:
        try:
            return self.services.storage.get_bytes(key).decode()
        except ObjectMissing:
            return None

    def _run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(0.05)

    def poll(self) -> None:
        for track in self.texts:
            key = self.prefix + ("master.m3u8" if track == "master" else f"{track}/index.m3u8")
            text = self._get(key)
            if text is None or (self.texts[track] and self.texts[track][-1] == text):
                continue
            self.texts[track].append(text)
            if track != "master":
                for segment in m3u8.loads(text).segments:
                    seg_key = posixpath.normpath(posixpath.join(self.prefix, track, segment.uri))
                    if seg_key not in self.first_bytes:
                        self.first_bytes[seg_key] = self.services.storage.get_bytes(seg_key)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        self.poll()


def source(services: pipeline.Services, tmp_path: Path, seconds: float = 30) -> str:
    path = make_sample(str(tmp_path / "early.mp4"), SampleSpec(640, 360, seconds, "30", audio=True))
    return upload(services, Path(path), f"uploads/{uuid.uuid4().hex[:8]}/early.mp4")


def history(services: pipeline.Services, video_id: str) -> list[tuple[str, dict]]:
    return [(e["kind"], e["detail"]) for e in services.catalog.get_events(video_id)]


def test_whole_video_early_playlists_grow_and_list_the_vod_segments(airflow_env, tmp_path):
    with webhooks_to_a_receiver() as (services, receiver):
        video_id = f"early-{uuid.uuid4().hex[:8]}"
        params = {"source": source(services, tmp_path), "video_id": video_id, "ladder": LADDER,
                  "callback_url": receiver.url}
        poller = Poller(services, layout.early_prefix(video_id, 1), LADDER)
        try:
            run_all(services, params, f"run-{video_id}")
        finally:
            poller.finish()

    master = m3u8.loads(poller.texts["master"][-1])
    assert len(poller.texts["master"]) == 1, "the master is written once"
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    hls = layout.hls_prefix(video_id, 1)
    for track in LADDER:
        texts = poller.texts[track]
        assert len(texts) >= 2, f"{track}: the playlist was seen growing ({len(texts)} snapshot(s))"
        for before, after in itertools.pairwise(texts):
            assert after.startswith(before), "a rewrite only appends"
        for text in texts:
            parsed = m3u8.loads(text)  # every snapshot parses
            assert parsed.playlist_type == "event" and parsed.target_duration == 7 and parsed.media_sequence == 0
        final = m3u8.loads(texts[-1])
        assert final.is_endlist and texts[-1].count("#EXT-X-ENDLIST") == 1
        assert not any(m3u8.loads(t).is_endlist for t in texts[:-1])
        vod = m3u8.loads(services.storage.get_bytes(f"{hls}{track}/index.m3u8").decode())
        # The first VOD segment as its three 2 s lead-in pieces (early/<track>/), then the VOD's own segments.
        lead, rest = final.segments[:3], final.segments[3:]
        assert [s.uri for s in lead] == ["seg_00000.ts", "seg_00001.ts", "seg_00002.ts"]
        assert [s.duration for s in lead] == [2.0, 2.0, 2.0]
        assert sum(s.duration for s in lead) == pytest.approx(vod.segments[0].duration)
        assert [f"../../hls/{track}/{s.uri}" for s in vod.segments[1:]] == [s.uri for s in rest]
        assert [round(s.duration, 3) for s in vod.segments[1:]] == [round(s.duration, 3) for s in rest]
        for segment in vod.segments[1:]:  # what a player got while encoding is the VOD's own bytes
            key = f"{hls}{track}/{segment.uri}"
            assert poller.first_bytes[key] == services.storage.get_bytes(key)
        assert texts[0].count("#EXTINF") < 3, f"{track}: first seen with {texts[0].count('#EXTINF')} segments"
        head = services.storage.client.head_object(Bucket="vodflow", Key=f"{layout.early_prefix(video_id, 1)}"
                                                   f"{track}/index.m3u8")
        assert head["CacheControl"] == "no-cache"

    video = services.catalog.get_video(video_id)
    assert video["status"] == "ready" and video["playable_version"] == 1 and video["playable_at"] is not None
    kinds = [kind for kind, _ in history(services, video_id)]
    ready = next(i for i, (kind, detail) in enumerate(history(services, video_id))
                 if kind == "status" and detail.get("status") == "ready")
    assert kinds.count("playable") == 1 and kinds.index("playable") < ready
    assert video["playable_at"] < video["finished_at"]
    sent = [e["type"] for e in events(receiver)]
    assert sent == ["video.playable", "video.ready"], "playable once, before ready"
    playable = events(receiver)[0]
    assert playable["version"] == 1 and "playable_url" in playable


class Lines(logging.Handler):
    """What one logger says, as the messages (on the logger itself: whatever Airflow's logging config does with
    propagation, these are seen)."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.INFO)
        self.names, self.lines = names, []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> list[str]:
        for name in self.names:
            logging.getLogger(name).addHandler(self)
            logging.getLogger(name).setLevel(logging.INFO)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            logging.getLogger(name).removeHandler(self)


def test_the_early_path_puts_each_segment_once(airflow_env, tmp_path, monkeypatch):
    services = pipeline.Services.load()
    video_id = f"early-{uuid.uuid4().hex[:8]}"
    puts: collections.Counter[str] = collections.Counter()
    counting, real_upload = threading.Lock(), services.storage.upload_file

    def upload_file(path: str, key: str, *args, **kwargs) -> int:  # the real PUT, counted per key
        with counting:
            puts[key] += 1
        return real_upload(path, key, *args, **kwargs)

    monkeypatch.setattr(services.storage, "upload_file", upload_file)
    with Lines("vodflow.pipeline.early.whole", "vodflow.pipeline.transcode") as lines:
        run_all(services, {"source": source(services, tmp_path, 20), "video_id": video_id, "ladder": LADDER},
                f"run-{video_id}")
    segments = [k for k in services.storage.list_keys(layout.hls_prefix(video_id, 1)) if k.endswith(".ts")]
    assert segments and {k: puts[k] for k in segments} == dict.fromkeys(segments, 1), "each segment PUT once"
    logged = [line for line in lines if line.startswith("early: ")]
    # The early path PUT every VOD segment but the first (its lead-in pieces stand for it), and the pieces.
    assert logged and logged[0].startswith(f"early: {len(segments) - len(LADDER)} segment PUTs, "
                                           f"{3 * len(LADDER)} lead-in piece PUTs"), lines
    uploaded = [line for line in lines if line.startswith("Uploaded ")]
    assert f"({len(segments) - len(LADDER)} segments by early playback before)" in uploaded[0]


def test_a_failed_run_leaves_no_early_object_and_no_playable_flag(airflow_env, tmp_path):
    """A cut upload: ffmpeg writes (and the early path lists) its first segments, then the encode is refused
    (streamed, then again from a downloaded copy: the same keys again); the failure callback's discard removes
    everything."""
    services = pipeline.Services.load()
    _, cut = faststart_sample_and_cut(tmp_path, 30, 0.6)
    video_id = f"early-cut-{uuid.uuid4().hex[:6]}"
    params = {"source": upload(services, cut, f"uploads/{uuid.uuid4().hex[:8]}/cut.mp4"), "video_id": video_id,
              "ladder": ["240p"]}
    job, probed, plan, items = pipeline.prepare(params, f"run-{video_id}", lambda step, job: None, services)
    with pytest.raises(BadInput):
        pipeline.transcode(job, probed, plan, items[0], services)
    [track] = services.catalog.early_tracks_of(video_id, 1).values()  # the sample's own size
    assert track.listed >= 1, "the early path ran"
    assert services.catalog.get_video(video_id)["playable_version"] == 1
    pipeline.discard_unpublished(job, services)
    assert services.storage.list_keys(layout.version_prefix(video_id, 1)) == []
    video = services.catalog.get_video(video_id)
    assert video["status"] == "failed" and video["playable_version"] is None and video["playable_at"] is None
    assert services.catalog.early_tracks_of(video_id, 1) == {}


def test_a_forced_failure_in_publish_clears_playable(airflow_env, tmp_path, monkeypatch):
    services = pipeline.Services.load()
    video_id = f"early-pub-{uuid.uuid4().hex[:6]}"
    params = {"source": source(services, tmp_path, 14), "video_id": video_id, "ladder": ["240p"]}

    def broken(*args, **kwargs):
        raise RuntimeError("forced failure in publish")

    monkeypatch.setattr(services.catalog, "publish", broken)
    with pytest.raises(RuntimeError, match="forced"):
        run_all(services, params, f"run-{video_id}")
    assert services.catalog.get_video(video_id)["playable_version"] == 1  # it was playable until then
    job = services.catalog.get_video(video_id)
    pipeline.discard_unpublished(pipeline.Job(video_id=video_id, version=1, run_id=job["dag_run_id"],
                                              source_uri=params["source"], etag="", size=0, title="",
                                              ladder="default"), services)
    assert services.storage.list_keys(layout.version_prefix(video_id, 1)) == []
    assert services.catalog.get_video(video_id)["playable_version"] is None


def test_a_rerun_of_a_video_published_without_early_playback_is_never_marked_playable(airflow_env, tmp_path):
    """Its published version is what viewers see: the re-run's early tree is a preview, not a playable flag."""
    services = pipeline.Services.load()
    video_id = f"early-off-{uuid.uuid4().hex[:6]}"
    params = {"source": source(services, tmp_path, 14), "video_id": video_id, "ladder": ["240p"]}
    run_all(replace(services, settings=replace(services.settings, early_playback=False)), params, f"run-{video_id}")
    assert services.catalog.get_video(video_id)["playable_version"] is None
    job, probed, plan, items = pipeline.prepare(params, f"rerun-{video_id}", lambda step, job: None, services)
    for item in items:
        pipeline.transcode(job, probed, plan, item, services)
    assert services.catalog.early_tracks_of(video_id, 2), "the re-run has its early tree (a preview)"
    video = services.catalog.get_video(video_id)
    assert (video["current_version"], video["playable_version"], video["playable_at"]) == (1, None, None)
    assert [d for kind, d in history(services, video_id) if kind == "playable"] == []


def test_a_rerun_of_a_ready_video_keeps_playable_url_and_gets_a_preview(airflow_env, tmp_path):
    from starlette.requests import Request

    from vodflow.web.playable import playable_json

    services = pipeline.Services.load()
    video_id = f"early-re-{uuid.uuid4().hex[:6]}"
    params = {"source": source(services, tmp_path, 14), "video_id": video_id, "ladder": ["240p"]}
    run_all(services, params, f"run-{video_id}")
    request = Request({"type": "http", "root_path": "/vodflow", "headers": []})
    first = playable_json(request, services.catalog.get_video(video_id), services.catalog)
    assert first["playable"] and first["playable_url"] == f"/vodflow/api/videos/{video_id}/media/v1/hls/master.m3u8"
    assert first["preview_url"] is None

    job, probed, plan, items = pipeline.prepare(params, f"rerun-{video_id}", lambda step, job: None, services)
    results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
    building = playable_json(request, services.catalog.get_video(video_id), services.catalog)
    assert building["playable_url"] == first["playable_url"], "what viewers see does not change"
    assert building["preview_url"] == f"/vodflow/api/videos/{video_id}/media/v2/early/master.m3u8"
    assert building["playable_at"] == first["playable_at"]
    assert services.catalog.get_video(video_id)["playable_version"] == 1
    assert [d for kind, d in history(services, video_id) if kind == "playable"] == [{"version": 1, "url": None}]
    pipeline.publish(job, plan, results, services)
    done = playable_json(request, services.catalog.get_video(video_id), services.catalog)
    assert done["playable_url"].endswith("/v2/hls/master.m3u8") and done["preview_url"] is None
    assert json.dumps(done)  # plain JSON
