"""``transcode``: run one work item — the whole video, one chunk of it, or a chunked run's audio — on a
``transcode`` worker, and upload what it made under the (not yet published) version."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from vodflow import layout
from vodflow.catalog import is_disconnect
from vodflow.codec import decode, encode
from vodflow.errors import BadInput
from vodflow.media.encode.chunks import encode_audio, encode_chunk
from vodflow.media.encode.multicodec import track_path
from vodflow.media.encode.process import Throttle
from vodflow.media.encode.renditions import audio_group_of, encode_renditions, measure_audio, subtitle_file
from vodflow.media.encode.segmented import early_grid
from vodflow.media.encode.watermark import on_pictures
from vodflow.media.measured import MeasuredRendition
from vodflow.media.pictures.thumbnails import choose_poster, picture_outputs
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.tracks import alternate_audio
from vodflow.pipeline.audio_level import audio_gains
from vodflow.pipeline.auto_captions import recognise_captions
from vodflow.pipeline.early import AUDIO_TRACK, EarlyTree
from vodflow.pipeline.early.whole import WholeVideoEarly
from vodflow.pipeline.early_chunks import (
    EarlyFeed,
    adopt_audio,
    audio_feed,
    audio_last_seq,
    chunk_ends,
    chunk_feed,
    early_audio_kbps,
    feeding,
)
from vodflow.pipeline.ladder_decision import decided_plan, record_quality, score_chunk
from vodflow.pipeline.outputs import EncodedRendition, run_codec_tracks, run_encoded
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.scratch import encoder_slot, shared_source, threads_per_encoder, work_dir
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.watermarks import local_marks
from vodflow.pipeline.work import (
    AudioResult,
    Captions,
    ChunkOfVideo,
    ChunkResult,
    WholeAudio,
    WholeVideo,
    WholeVideoResult,
    WorkItem,
    WorkResult,
    item_from_dict,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# With early playback, a chunk after the first runs its ffmpeg at this lower CPU priority: beside the first chunk
# on a machine, it takes what the first leaves (the video is playable sooner; the work done is the same).
LATER_CHUNK_NICENESS = 5


def transcode(job: Job, probed: SourceInfo, plan: EncodePlan, item: WorkItem,
              services: Services | None = None) -> WorkResult:
    handler = HANDLERS.get(type(item))
    if handler is None:
        raise TypeError(f"no handler for work item {item!r}")
    services = services or Services.load()
    if isinstance(item, WholeAudio):
        # AAC: one thread, and short. Counted as an encode, it halved the threads of the chunk beside it, whose first
        # segment is what early playback waits for.
        return handler(services, job, probed, plan, item)
    with encoder_slot(Path(services.settings.scratch_dir)) as running:
        encoder = services.settings.encoder
        # The first chunk is what early playback waits for: it takes every core, the others yield to it.
        threads = threads_per_encoder(1 if leads_playback(services, item) else running, encoder.threads)
        if threads != encoder.threads:
            log.info("%d encodes on this machine: %d thread(s) per encoder", running, threads)
            services = replace(services, settings=replace(services.settings, encoder=replace(encoder,
                                                                                             threads=threads)))
        return handler(services, job, probed, plan, item)


def leads_playback(services: Services, item: WorkItem) -> bool:
    """A chunked run's first chunk, with early playback on: the video is playable once its first segments are up."""
    return services.settings.early_playback and isinstance(item, ChunkOfVideo) and item.chunk.index == 0


def transcode_dicts(job: dict[str, Any], probed: dict[str, Any], plan: dict[str, Any], item: dict[str, Any],
                    services: Services | None = None) -> dict[str, Any]:
    """The task boundary: XCom dicts in, typed values inside, a dict out."""
    return encode(transcode(decode(Job, job), decode(SourceInfo, probed), decode(EncodePlan, plan),
                            item_from_dict(item), services))


def encode_whole_video(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan,
                       item: WholeVideo) -> WholeVideoResult:
    """Every rendition and the pictures from one decode of the source (a per-title ladder decided first)."""
    plan = decide_ladder(services, job, probed, plan, record=True)
    names = plan.all_names
    services.catalog.renditions_started(job.video_id, job.version, names)
    workdir = str(work_dir(services.scratch(job), "encode"))
    hls_dir, pictures_dir = os.path.join(workdir, "hls"), os.path.join(workdir, "thumbs")
    codecs_dir = os.path.join(workdir, "codecs")  # the other codecs' fMP4s: not part of the TS tree
    throttle = Throttle(interval=2.0, step=1.0)

    def report(percent: float) -> None:
        if throttle.ready(percent):
            _best_effort_progress(services, job, names, percent)

    alternates = alternate_audio(probed.audio_tracks)
    subs_dir = os.path.join(workdir, "subs")
    # The plan decided: the early tree has its ladder.
    early = WholeVideoEarly(services, job, plan, hls_dir, os.path.join(workdir, "lead"))

    def encode(src: str) -> list[MeasuredRendition]:
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(pictures_dir)
        os.makedirs(subs_dir)
        gains = audio_gains(services, job, probed, src, bool(plan.audio_bitrates), alternates)
        marks = local_marks(services, job, workdir)
        with early.watching():
            return encode_renditions(src, hls_dir, probed, list(plan.renditions), services.settings.encoder,
                                     on_progress=report, audio_gains=gains,
                                     extra_outputs=lambda video: picture_outputs(
                                         on_pictures(video, marks, probed.width, probed.height), plan.pictures,
                                         pictures_dir),
                                     alternates=alternates, subtitles=(subs_dir, list(probed.subtitle_tracks)),
                                     cmaf_renditions=list(plan.cmaf_renditions), cmaf_root=codecs_dir, marks=marks,
                                     lead_root=early.lead_root)

    try:
        # Read the source as it is encoded: no wait for a download, no copy of a huge upload on the worker
        # (a download first was no faster even for a 46 MB source: docs/speed.md#speed).
        encode_started = time.monotonic()
        measured = confirmed(services, job, probed, encode)
        _record_encode(services, job, probed, measured, time.monotonic() - encode_started)
        if job.adaptive:  # a per-title ladder is judged by what it reached
            record_quality(services, job, probed, measured, hls_dir)
        audio = audio_group_of(probed, [measure_audio(hls_dir, a) for a in alternates])
        started = time.monotonic()
        keys = services.storage.upload_tree(hls_dir, layout.hls_prefix(job.video_id, job.version),
                                            exclude=("index.m3u8",), skip=early.uploaded)
        early.fill(measured)
        pictures = _upload_pictures(services, job, pictures_dir)
        log.info("Uploaded %d objects (%.1f MB) in %.2f s (%d segments by early playback before)",
                 len(keys) + len(pictures) - len(early.uploaded), sum(m.bytes for m in measured) / 1e6,
                 time.monotonic() - started, len(early.uploaded))
        outputs = run_encoded(services, job, plan, [
            EncodedRendition(r, m, os.path.join(hls_dir, m.name)) for r, m in zip(plan.renditions, measured,
                                                                                  strict=True)],
            os.path.join(workdir, "outputs"), {r.name: track_path(codecs_dir, r.name) for r in plan.cmaf_renditions})
        for m in measured:
            services.catalog.rendition_done(job.video_id, job.version, m.name, codecs=m.codecs, bytes_=m.bytes,
                                            segments=len(m.segments))
        run_codec_tracks(services, job, plan, measured[0], [(r, track_path(codecs_dir, r.name))
                                                            for r in plan.cmaf_renditions],
                         os.path.join(workdir, "codec-outputs"))
        return WholeVideoResult(measured=tuple(measured), pictures=tuple(pictures), audio=audio,
                                subtitles=_park_subtitles(services, job, probed, subs_dir), outputs=outputs,
                                renditions=plan.renditions)
    finally:
        early.close(services.settings.webhook_deadline_seconds)
        shutil.rmtree(workdir, ignore_errors=True)


def confirmed(services: Services, job: Job, probed: SourceInfo, encode: Callable[[str], T]) -> T:
    """``encode(source)`` streamed from a presigned URL; when that says the upload is bad, once more from a
    downloaded copy before it is blamed: a network read that broke off (or a URL that expired) is not a corrupt
    file. Every kind of work item reads its source through this."""
    try:
        return encode(services.source_url(job, probed))
    except BadInput as exc:
        log.warning("Streamed encode says %s; confirming from a local copy", exc.code)
        with shared_source(services.scratch(job) / "source",
                           lambda path: services.storage.download(job.location, path)) as local:
            return encode(local)


def decide_ladder(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan, record: bool) -> EncodePlan:
    """``decided_plan`` read as an encode reads its source: the probe is the first read past the header, so a
    cut upload is blamed there, after the same confirmation from a local copy."""
    if not job.adaptive:
        return plan
    return confirmed(services, job, probed, lambda src: decided_plan(services, job, probed, plan, src, record))


def encode_chunk_of_video(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan,
                          item: ChunkOfVideo) -> ChunkResult:
    """One chunk of the source for every rendition (decoded once), and the pictures in it; the pieces are parked
    in the bucket for the join. A per-title run: every chunk decides the same ladder (``pipeline.ladder_decision``) and
    scores the VMAF windows that fall in it. Its H.264 segments join the early tree as they are written."""
    plan = decide_ladder(services, job, probed, plan, record=item.chunk.index == 0)
    chunk, names = item.chunk, plan.all_names
    services.catalog.renditions_progress_at_least(job.video_id, job.version, names, 0)
    workdir = str(work_dir(services.scratch(job), f"chunk{chunk.index:03d}"))
    pictures_dir = os.path.join(workdir, "thumbs")
    tree = EarlyTree.open(services, job, plan)
    adopt_audio(services, job, tree, probed)

    def encode(src: str) -> dict[str, str]:
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(pictures_dir)
        marks = local_marks(services, job, workdir)
        feed = chunk_feed(services, job, tree, plan, workdir, chunk)
        with feeding(feed, chunk_ends(feed, plan, chunk)):
            return encode_chunk(src, workdir, probed, chunk, list(plan.renditions), services.settings.encoder,
                                extra_outputs=lambda video: picture_outputs(
                                    on_pictures(video, marks, probed.width, probed.height), plan.pictures,
                                    pictures_dir, first_frame=chunk.first_frame, frames=chunk.frames),
                                cmaf_renditions=list(plan.cmaf_renditions), marks=marks,
                                niceness=LATER_CHUNK_NICENESS if services.settings.early_playback and chunk.index
                                else 0)

    try:
        pieces = confirmed(services, job, probed, encode)
        vmaf = score_chunk(services, job, probed, plan, chunk, pieces) if job.adaptive else {}
        keys = services.park(job, pieces)
        pictures = _upload_pictures(services, job, pictures_dir)
        done = sum(1 for key in services.storage.list_keys(layout.chunks_prefix(job.video_id, job.version))
                   if key.rsplit("/", 1)[1].startswith(f"{plan.names[0]}.c"))
        services.catalog.renditions_progress_at_least(job.video_id, job.version, names, 95.0 * done / plan.chunks)
        return ChunkResult(index=chunk.index, keys=keys, pictures=tuple(pictures), renditions=plan.renditions,
                           vmaf_frames=vmaf, first_frame=chunk.first_frame)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if tree is not None:  # its video.playable webhook, if this item made the video playable
            tree.close(services.settings.webhook_deadline_seconds)


def encode_whole_audio(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan,
                       item: WholeAudio) -> AudioResult:
    """The whole audio track, once per AAC bitrate; the early variants' one (``early_audio_kbps``) also as the
    early tree's ``audio`` track, its segments uploaded as they are written."""
    workdir = str(work_dir(services.scratch(job), "audio"))
    alternates = alternate_audio(probed.audio_tracks)
    kbps = early_audio_kbps(plan)
    last = audio_last_seq(probed, early_grid(services.settings.encoder))
    feeds: list[EarlyFeed] = []

    def encode(src: str) -> dict[int, str]:
        shutil.rmtree(workdir, ignore_errors=True)
        # One gain for each whole track, measured here: never per chunk.
        gains = audio_gains(services, job, probed, src, bool(plan.audio_bitrates), alternates)
        feed = audio_feed(services, job, plan, probed, workdir)
        feeds[:] = [feed] if feed else []
        with feeding(feed, lambda: {AUDIO_TRACK: last}):
            return encode_audio(src, workdir, probed, plan.audio_bitrates, services.settings.encoder, alternates,
                                subtitles=True, audio_gains=gains, segmented_kbps=kbps if feed else 0)

    try:
        tracks = confirmed(services, job, probed, encode)
        hls_dir = os.path.join(workdir, "hls")
        audio = audio_group_of(probed, [measure_audio(hls_dir, a) for a in alternates])
        if audio:  # the alternate renditions go straight to their place in the version
            services.storage.upload_tree(hls_dir, layout.hls_prefix(job.video_id, job.version),
                                         exclude=("index.m3u8",))
        return AudioResult(keys=services.park(job, tracks), audio=audio,
                           subtitles=_park_subtitles(services, job, probed, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for feed in feeds:
            if feed.tree is not None:  # its video.playable webhook, if this item made the video playable
                feed.tree.close(services.settings.webhook_deadline_seconds)


# Every kind of work item ``plan_work`` makes, and what runs it: a kind without a handler is an error.
HANDLERS: dict[type, Callable[[Services, Job, SourceInfo, EncodePlan, Any], WorkResult]] = {
    WholeVideo: encode_whole_video,
    ChunkOfVideo: encode_chunk_of_video,
    WholeAudio: encode_whole_audio,
    Captions: recognise_captions,
}


def _record_encode(services: Services, job: Job, probed: SourceInfo, measured: list[MeasuredRendition],
                   seconds: float) -> None:
    """One ``encoded`` event per rendition (what /vodflow/metrics' encode histograms count); best effort."""
    try:
        for m in measured:
            services.catalog.add_event(job.video_id, "encoded", rendition=m.name, seconds=round(seconds, 3),
                                       realtime_factor=round(probed.duration / seconds, 3) if seconds else None,
                                       bytes=m.bytes)
    except Exception:  # a metric is never a reason to fail an encode that worked
        log.exception("Could not record the encode's timing")


def _park_subtitles(services: Services, job: Job, probed: SourceInfo, folder: str) -> tuple[dict[str, Any], ...]:
    """The source's text subtitle tracks, converted to WebVTT by the encode, parked for ``publish`` to segment."""
    found = {t.index: os.path.join(folder, subtitle_file(t)) for t in probed.subtitle_tracks if t.text}
    found = {index: path for index, path in found.items() if os.path.exists(path)}
    keys = services.park(job, found) if found else {}
    return tuple({"language": t.language, "title": t.title, "key": keys[str(t.index)]}
                 for t in probed.subtitle_tracks if str(t.index) in keys)


def _best_effort_progress(services: Services, job: Job, names: list[str], percent: float) -> None:
    """Progress is best effort: never stop an encode for it."""
    try:
        services.catalog.renditions_progress_at_least(job.video_id, job.version, names, percent)
    except sa.exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        log.warning("Progress %.0f %% not recorded: catalog database unreachable", percent)


def _upload_pictures(services: Services, job: Job, folder: str) -> list[str]:
    """The pictures an encode wrote (some, all or none of the plan's), the poster chosen among its candidates
    first when this encode had them: keys, sorted."""
    if not os.path.isdir(folder) or not os.listdir(folder):
        return []
    try:
        choose_poster(folder)
    except OSError:  # pictures are best effort: without poster.jpg, publish lets a thumbnail stand in
        log.exception("Could not choose the poster among its candidates")
    return sorted(services.storage.upload_tree(folder, layout.thumbs_prefix(job.video_id, job.version)))
