"""The steps of ``transcode_video`` as plain functions; the DAG file only wires them.

Values passed between steps are plain dicts (they travel as XCom). Every step takes the ``job`` produced by
``register``. Bad input raises ``BadInput`` (the DAG's retry policy fails it at once); anything else is
retried. ``record_failure`` is the tasks' failure callback: the one place a failure reaches the catalog.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vodflow import errors, hls, layout
from vodflow.catalog import (
    PROBING,
    PUBLISHING,
    VERSION_DELETED,
    VERSION_FAILED,
    Catalog,
    RenditionPlan,
    Superseded,
    VariantRecord,
    catalog_for_connection,
    is_disconnect,
)
from vodflow.chunks import Chunk, encode_audio, encode_chunk, join_rendition, plan_chunks
from vodflow.complexity import measure_complexity
from vodflow.encode import encode_renditions
from vodflow.errors import BadInput, MediaToolError, VodflowError
from vodflow.hls import MeasuredRendition
from vodflow.ladder import LADDER_VERSION, Ladder, Rendition, adapt_ladder, plan_ladder, resolve_rungs
from vodflow.layout import S3Location, parse_source_uri
from vodflow.probe import SourceInfo, check_limits, probe
from vodflow.process import Throttle
from vodflow.request import kept_request
from vodflow.scratch import shared_source, work_dir
from vodflow.settings import Settings, load_settings
from vodflow.storage import Storage
from vodflow.thumbnails import POSTER, PicturePlan, picture_outputs, plan_pictures

log = logging.getLogger(__name__)
PRESIGN_SECONDS = 3600


@dataclass(frozen=True)
class Job:
    """Who and what a run is about; returned by ``register`` and handed to every later step."""

    video_id: str
    version: int
    run_id: str
    source_uri: str
    etag: str
    size: int
    title: str
    ladder: str | list[str]
    callback_url: str | None = None
    adaptive: bool = False
    chunk_seconds: float | None = None  # None: the settings decide; 0: never chunk

    @property
    def source(self) -> S3Location:
        return parse_source_uri(self.source_uri)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**data)


@dataclass
class Context:
    """The connections a step works through, built from settings."""

    settings: Settings
    catalog: Catalog
    storage: Storage

    @classmethod
    def load(cls) -> Context:
        settings = load_settings()
        return cls(settings, catalog_for_connection(settings.catalog_conn_id),
                   Storage(settings.aws_conn_id, settings.bucket))


def _encode_url(ctx: Context, job: Job, source: SourceInfo) -> str:
    """The source for an encoder to read as it goes: valid for as long as the encode may take, and an hour."""
    return ctx.storage.presigned_get(job.source, int(ctx.settings.encoder.timeout_for(source.duration)) + 3600)


def _park(ctx: Context, job: Job, files: dict[Any, str]) -> dict[str, str]:
    """Upload a chunked run's pieces to the version's ``chunks/`` prefix, for the join; name → key."""
    prefix = layout.chunks_prefix(job.video_id, job.version)
    keys = {}
    for name, path in files.items():
        keys[str(name)] = f"{prefix}{os.path.basename(path)}"
        ctx.storage.upload_file(path, keys[str(name)])
    return keys


def _scratch(ctx: Context, job: Job) -> Path:
    """This video version's scratch folder on this worker."""
    return Path(ctx.settings.scratch_dir, job.video_id, f"v{job.version}")


# Steps -------------------------------------------------------------------------------------------------------
def register(params: dict[str, Any], run_id: str, ctx: Context | None = None) -> dict[str, Any]:
    """Validate the request, identify the video, create or claim its catalog row and allocate a version."""
    ctx = ctx or Context.load()
    raw_source = str(params.get("source") or "")
    ladder = params.get("ladder") or ctx.settings.default_ladder
    problem: str | None = None
    try:
        location = parse_source_uri(raw_source)
        resolve_rungs(ladder)
    except ValueError as exc:
        problem = str(exc)
        location = S3Location("invalid", raw_source[:200] or "empty")
    info = None
    missing: BadInput | None = None
    if problem is None:
        try:
            info = ctx.storage.head(location)
        except BadInput as exc:
            missing = exc
    video_id = params.get("video_id") or layout.derive_video_id(location.bucket, location.key,
                                                                info.etag if info else "")
    source_uri = location.uri if problem is None else raw_source[:1100]  # record what was asked for
    job = Job(video_id=video_id, version=0, run_id=run_id, source_uri=source_uri, etag=info.etag if info else "",
              size=info.size if info else 0, title=params.get("title") or layout.title_from_key(location.key),
              ladder=ladder, callback_url=params.get("callback_url"),
              adaptive=bool(ctx.settings.adaptive_ladder if params.get("adaptive") is None else params["adaptive"]),
              chunk_seconds=params.get("chunk_seconds"))
    version = ctx.catalog.register(video_id=job.video_id, source_uri=job.source_uri, etag=job.etag, size=job.size,
                                   title=job.title, run_id=run_id, ladder_version=LADDER_VERSION,
                                   uploaded_at=info.last_modified if info else None,
                                   request=kept_request(params, job.video_id))  # what a retry or reprocess reuses
    job = Job(**{**job.to_dict(), "version": version})
    log.info("Video %s version %d from %s (%d bytes)", job.video_id, version, job.source_uri, job.size)
    if problem is not None:
        _fail(ctx, job, BadInput(errors.INVALID_REQUEST, f"Invalid request: {problem}."))
    if missing is not None:
        _fail(ctx, job, missing)
    return job.to_dict()


def probe_source(job_data: dict[str, Any], ctx: Context | None = None) -> dict[str, Any]:
    """Read the source's container headers (not the whole file) and refuse what we cannot transcode."""
    ctx = ctx or Context.load()
    job = Job.from_dict(job_data)
    ctx.catalog.set_status(job.video_id, job.run_id, PROBING)
    if job.size == 0:
        raise BadInput(errors.EMPTY_FILE, "The file is empty (0 bytes).")
    if job.size > ctx.settings.limits.max_size_bytes:
        raise BadInput(errors.TOO_LARGE, f"The file is {job.size / 1024**3:.2f} GiB; the maximum is "
                       f"{ctx.settings.limits.max_size_bytes / 1024**3:g} GiB.")
    head = ctx.storage.read_head(job.source)
    url = ctx.storage.presigned_get(job.source, PRESIGN_SECONDS)
    source = probe(url, job.size, head)
    check_limits(source, ctx.settings.limits)
    ctx.catalog.record_source(job.video_id, job.run_id, source)
    log.info("Source: %dx%d %s fps %.2f s, %s%s%s%s", source.width, source.height, source.fps, source.duration,
             source.video_codec, " +audio" if source.has_audio else " (no audio)", " HDR" if source.hdr else "",
             " interlaced" if source.interlaced else "")
    return source.to_dict()


def plan(job_data: dict[str, Any], source_data: dict[str, Any], ctx: Context | None = None) -> list[dict[str, Any]]:
    """The ladder, and the work items the mapped ``transcode`` task runs: one per rendition, or for a long
    source one per chunk (every rendition of that stretch) plus one for the audio."""
    ctx = ctx or Context.load()
    job = Job.from_dict(job_data)
    source = SourceInfo.from_dict(source_data)
    ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio, job.ladder)
    if job.adaptive:
        ladder = _adapt(ctx, job, source, ladder)
    ctx.catalog.plan_renditions(job.video_id, job.run_id, job.version, [
        RenditionPlan(r.name, r.width, r.height, r.video_kbps, r.audio_kbps, round(hls.frame_rate_value(r.fps), 3))
        for r in ladder.renditions
    ])
    log.info("Ladder v%d: %s", ladder.version,
             ", ".join(f"{r.name} {r.width}x{r.height} {r.video_kbps}k" for r in ladder.renditions))
    renditions = [r.to_dict() for r in ladder.renditions]
    fps = ladder.renditions[0].fps
    pictures = plan_pictures(source.width, source.height, source.duration, fps).to_dict()
    chunk_seconds = job.chunk_seconds
    if chunk_seconds is None:
        chunk_seconds = ctx.settings.chunk_seconds if source.duration > ctx.settings.chunk_threshold_seconds else 0
    planned = plan_chunks(source.duration, fps, chunk_seconds) if chunk_seconds else []
    if len(planned) < 2:
        # One item, one decode: every rendition and the pictures from a single ffmpeg (README, Speed).
        return [{"kind": "renditions", "label": " ".join(r["name"] for r in renditions),
                 "renditions": renditions, "pictures": pictures}]
    items = [{"kind": "chunk", "label": c.label, "chunk": c.to_dict(), "chunks": len(planned),
              "duration": source.duration, "renditions": renditions, "pictures": pictures} for c in planned]
    if source.has_audio:  # first: the whole track is the longest single item, so it must not be the tail
        items.insert(0, {"kind": "audio", "label": "audio",
                         "bitrates": sorted({r.audio_kbps for r in ladder.renditions if r.audio_kbps})})
    ctx.catalog.add_event(job.video_id, "chunked", chunks=len(planned), seconds=planned[1].start)
    log.info("Encoding in %d chunks of %g s", len(planned), planned[1].start)
    return items


def _adapt(ctx: Context, job: Job, source: SourceInfo, ladder: Ladder) -> Ladder:
    """Per-title bitrates from trial encodes of a few windows of the source (read through a presigned URL)."""
    url = ctx.storage.presigned_get(job.source, PRESIGN_SECONDS)
    complexity = measure_complexity(url, source, list(ladder.renditions), crf=ctx.settings.adaptive_crf,
                                    preset=ctx.settings.encoder.preset)
    adapted = adapt_ladder(ladder, complexity.kbps)
    ctx.catalog.add_event(job.video_id, "ladder_adapted", crf=complexity.crf, seconds=complexity.seconds_sampled,
                          needed_kbps=complexity.kbps, fixed_kbps={r.name: r.video_kbps for r in ladder.renditions},
                          chosen_kbps={r.name: r.video_kbps for r in adapted.renditions})
    return adapted


def prepare(params: dict[str, Any], run_id: str, on_step: Callable[[str, dict[str, Any] | None], None],
            ctx: Context | None = None) -> dict[str, Any]:
    """register → probe → plan in one task: each is too short to pay a task's start-up of its own.

    ``on_step(name, job)`` is told each step as it starts, so a failure can name its step and reach the video.
    """
    ctx = ctx or Context.load()
    on_step("register", None)
    job = register(params, run_id, ctx)
    on_step("probe", job)
    source = probe_source(job, ctx)
    on_step("plan", job)
    return {"job": job, "source": source, "items": plan(job, source, ctx)}


def transcode(job_data: dict[str, Any], source_data: dict[str, Any], item: dict[str, Any],
              ctx: Context | None = None) -> dict[str, Any]:
    """Run one work item of ``plan``: every rendition of a video, one chunk of every rendition, or the audio."""
    handler = WORK_ITEM_HANDLERS.get(item["kind"])
    if handler is None:
        raise ValueError(f"unknown work item kind {item['kind']!r}")
    return handler(job_data, source_data, item, ctx)


def encode_renditions_item(job_data: dict[str, Any], source_data: dict[str, Any], item: dict[str, Any],
                           ctx: Context | None = None) -> dict[str, Any]:
    """Every rendition and the pictures from one decode; upload them under the (not yet published) version."""
    ctx = ctx or Context.load()
    job, source = Job.from_dict(job_data), SourceInfo.from_dict(source_data)
    renditions = [Rendition.from_dict(r) for r in item["renditions"]]
    names = [r.name for r in renditions]
    pictures = PicturePlan.from_dict(item["pictures"])
    ctx.catalog.renditions_progress_at_least(job.video_id, job.version, names, 0)
    workdir = str(work_dir(_scratch(ctx, job), "encode"))
    hls_dir, pictures_dir = os.path.join(workdir, "hls"), os.path.join(workdir, "thumbs")
    throttle = Throttle(interval=2.0, step=1.0)

    def report(percent: float) -> None:
        if throttle.ready(percent):
            _best_effort_progress(ctx, job, names, percent)

    def encode(src: str) -> list[MeasuredRendition]:
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(pictures_dir)
        return encode_renditions(src, hls_dir, source, renditions, ctx.settings.encoder, on_progress=report,
                                 extra_outputs=lambda video: picture_outputs(video, pictures, pictures_dir))

    try:
        # Read the source as it is encoded: no wait for a download, no copy of a huge upload on the worker
        # (a download first was no faster even for a 46 MB source: README, Speed).
        try:
            measured = encode(_encode_url(ctx, job, source))
        except BadInput as exc:
            # Before blaming the upload, rule out the network: encode again from a downloaded copy.
            log.warning("Streamed encode says %s; confirming from a local copy", exc.code)
            with shared_source(_scratch(ctx, job) / "source",
                               lambda path: ctx.storage.download(job.source, path)) as local:
                measured = encode(local)
        started = time.monotonic()
        keys = ctx.storage.upload_tree(hls_dir, layout.hls_prefix(job.video_id, job.version), exclude=("index.m3u8",))
        picture_keys = _upload_pictures(ctx, job, pictures_dir)
        log.info("Uploaded %d objects (%.1f MB) in %.2f s", len(keys) + len(picture_keys),
                 sum(m.bytes for m in measured) / 1e6, time.monotonic() - started)
        for m in measured:
            ctx.catalog.rendition_done(job.video_id, job.version, m.name, codecs=m.codecs, bytes_=m.bytes,
                                       segments=len(m.segments))
        return {"kind": "renditions", "measured": [m.to_dict() for m in measured], "pictures": picture_keys}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _best_effort_progress(ctx: Context, job: Job, names: list[str], percent: float) -> None:
    """Progress is best effort: never stop an encode for it."""
    try:
        ctx.catalog.renditions_progress_at_least(job.video_id, job.version, names, percent)
    except sa.exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        log.warning("Progress %.0f %% not recorded: catalog database unreachable", percent)


def _upload_pictures(ctx: Context, job: Job, folder: str) -> list[str]:
    """The pictures an encode wrote (some, all or none of the plan's): keys, sorted."""
    if not os.path.isdir(folder) or not os.listdir(folder):
        return []
    return sorted(ctx.storage.upload_tree(folder, layout.thumbs_prefix(job.video_id, job.version)))


def encode_chunk_item(job_data: dict[str, Any], source_data: dict[str, Any], item: dict[str, Any],
                      ctx: Context | None = None) -> dict[str, Any]:
    """Encode one chunk of the source for every rendition (decoded once); park the pieces in the bucket."""
    ctx = ctx or Context.load()
    job, source, chunk = Job.from_dict(job_data), SourceInfo.from_dict(source_data), Chunk.from_dict(item["chunk"])
    renditions = [Rendition.from_dict(r) for r in item["renditions"]]
    names = [r.name for r in renditions]
    ctx.catalog.renditions_progress_at_least(job.video_id, job.version, names, 0)
    pictures = PicturePlan.from_dict(item["pictures"])
    workdir = str(work_dir(_scratch(ctx, job), f"chunk{chunk.index:03d}"))
    pictures_dir = os.path.join(workdir, "thumbs")
    os.makedirs(pictures_dir)
    try:
        url = _encode_url(ctx, job, source)
        keys = _park(ctx, job, encode_chunk(
            url, workdir, source, chunk, renditions, ctx.settings.encoder,
            extra_outputs=lambda video: picture_outputs(video, pictures, pictures_dir, first_frame=chunk.first_frame,
                                                        frames=chunk.frames)))
        picture_keys = _upload_pictures(ctx, job, pictures_dir)
        done = sum(1 for key in ctx.storage.list_keys(layout.chunks_prefix(job.video_id, job.version))
                   if key.rsplit("/", 1)[1].startswith(f"{names[0]}.c"))
        ctx.catalog.renditions_progress_at_least(job.video_id, job.version, names, 95.0 * done / item["chunks"])
        return {"kind": "chunk", "index": chunk.index, "keys": keys, "pictures": picture_keys}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def encode_audio_item(job_data: dict[str, Any], source_data: dict[str, Any], item: dict[str, Any],
                      ctx: Context | None = None) -> dict[str, Any]:
    """The whole audio track, once per AAC bitrate: audio is never cut, so no seam can click."""
    ctx = ctx or Context.load()
    job, source = Job.from_dict(job_data), SourceInfo.from_dict(source_data)
    workdir = str(work_dir(_scratch(ctx, job), "audio"))
    try:
        url = _encode_url(ctx, job, source)
        return {"kind": "audio", "keys": _park(ctx, job, encode_audio(url, workdir, source, list(item["bitrates"]),
                                                                     ctx.settings.encoder))}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


WorkItemHandler = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], "Context | None"], dict[str, Any]]
# Every kind of work item ``plan`` makes, and what runs it: a kind without a handler is an error, not a default.
WORK_ITEM_HANDLERS: dict[str, WorkItemHandler] = {
    "renditions": encode_renditions_item,
    "chunk": encode_chunk_item,
    "audio": encode_audio_item,
}


def join_chunks(ctx: Context, job: Job, items: list[dict[str, Any]], results: list[dict[str, Any]]
                ) -> list[MeasuredRendition]:
    """A chunked encode, per rendition, joined into one continuous HLS rendition (stream copy) and uploaded."""
    chunk_keys = sorted((r for r in results if r["kind"] == "chunk"), key=lambda r: r["index"])
    audio_keys = next((r["keys"] for r in results if r["kind"] == "audio"), {})
    planned = next(i for i in items if i["kind"] == "chunk")  # every chunk item carries the same plan
    renditions = [Rendition.from_dict(r) for r in planned["renditions"]]
    duration = planned["duration"]
    if len(chunk_keys) != planned["chunks"]:
        raise MediaToolError(f"{len(chunk_keys)} of {planned['chunks']} chunks were encoded")
    workdir = _scratch(ctx, job) / "join"
    measured_all = []
    try:
        parts_dir = workdir / "parts"
        parts_dir.mkdir(parents=True, exist_ok=True)
        for key in [k for r in chunk_keys for k in r["keys"].values()] + list(audio_keys.values()):
            ctx.storage.download(S3Location(ctx.storage.bucket, key), str(parts_dir / key.rsplit("/", 1)[1]))
        for rendition in renditions:
            parts = [str(parts_dir / r["keys"][rendition.name].rsplit("/", 1)[1]) for r in chunk_keys]
            audio = (str(parts_dir / audio_keys[str(rendition.audio_kbps)].rsplit("/", 1)[1])
                     if rendition.audio_kbps else None)
            out_dir = workdir / rendition.name
            measured = join_rendition(parts, audio, str(out_dir), rendition, ctx.settings.encoder)
            if duration - measured.duration > max(1.0, 0.02 * duration):  # chunks past the end came out empty
                raise BadInput(errors.UNREADABLE, f"Only {measured.duration:.1f} s of the {duration:.1f} s video "
                               "could be decoded; the file is truncated (an interrupted upload?) or corrupt.")
            ctx.storage.upload_tree(str(out_dir), f"{layout.hls_prefix(job.video_id, job.version)}{rendition.name}/",
                                    exclude=("index.m3u8",))
            ctx.catalog.rendition_done(job.video_id, job.version, rendition.name, codecs=measured.codecs,
                                       bytes_=measured.bytes, segments=len(measured.segments))
            measured_all.append(measured)
            shutil.rmtree(out_dir, ignore_errors=True)
        ctx.storage.delete_prefix(layout.chunks_prefix(job.video_id, job.version))
        return measured_all
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def publish(job_data: dict[str, Any], items: list[dict[str, Any]], results: list[dict[str, Any]],
            ctx: Context | None = None) -> dict[str, Any]:
    """After every work item, once: join a chunked encode, write every playlist (the multivariant one last),
    then switch the catalog to this version at once."""
    ctx = ctx or Context.load()
    job = Job.from_dict(job_data)
    ctx.catalog.set_status(job.video_id, job.run_id, PUBLISHING)
    if any(item["kind"] == "chunk" for item in items):
        renditions = join_chunks(ctx, job, items, results)
    else:
        renditions = [MeasuredRendition.from_dict(m) for r in results for m in r["measured"]]
    pictures = sorted(key for r in results for key in r.get("pictures", []))
    target, playlists = hls.render_playlists(renditions)
    prefix = layout.hls_prefix(job.video_id, job.version)
    master = playlists.pop(hls.MASTER_PLAYLIST)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: ctx.storage.put_text(prefix + item[0], item[1]), playlists.items()))
    ctx.storage.put_text(prefix + hls.MASTER_PLAYLIST, master)  # last: a complete tree, or no master at all
    variants = [
        VariantRecord(stats.name, stats.bandwidth, stats.average_bandwidth, _s3_uri(ctx, prefix + r.playlist_uri))
        for r in renditions
        for stats in [hls.variant_stats(r, target)]
    ]
    master_key = prefix + hls.MASTER_PLAYLIST
    poster_key = layout.thumbs_prefix(job.video_id, job.version) + POSTER
    poster = _s3_uri(ctx, poster_key) if poster_key in pictures else None
    if poster is None:
        log.warning("No poster was made; publishing without one")
        ctx.catalog.add_event(job.video_id, "warning", message="No poster could be made; published without one.")
    try:
        older = ctx.catalog.publish(video_id=job.video_id, run_id=job.run_id, version=job.version,
                                    master_uri=_s3_uri(ctx, master_key), poster_uri=poster,
                                    ladder_version=LADDER_VERSION, variants=variants)
    except Superseded as exc:
        log.warning("Not publishing version %d: %s", job.version, exc)
        ctx.storage.delete_prefix(layout.version_prefix(job.video_id, job.version))
        ctx.catalog.mark_version(job.video_id, job.version, VERSION_DELETED)
        return {"video_id": job.video_id, "version": job.version, "published": False}
    for old in older[ctx.settings.keep_old_versions:]:
        ctx.storage.delete_prefix(layout.version_prefix(job.video_id, old))
        ctx.catalog.mark_version(job.video_id, old, VERSION_DELETED)
    log.info("Published %s version %d: %s", job.video_id, job.version, _s3_uri(ctx, master_key))
    notify(ctx, job)
    return {"video_id": job.video_id, "version": job.version, "published": True,
            "master_uri": _s3_uri(ctx, master_key), "target_duration": target,
            "variants": [asdict(v) for v in variants]}


def finish(job_data: dict[str, Any], ctx: Context | None = None) -> None:
    """Teardown, runs whatever happened: an unpublished version is removed and the video never stays active."""
    ctx = ctx or Context.load()
    job = Job.from_dict(job_data)
    scratch = _scratch(ctx, job)
    shutil.rmtree(scratch, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(scratch.parent)  # the video's folder, once no version of it is being worked on here
    versions = {v["version"]: v for v in ctx.catalog.get_versions(job.video_id)}
    mine = versions.get(job.version)
    if mine and mine["status"] == "published":
        return
    ctx.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code=errors.INTERNAL_ERROR,
                     message="The run ended without publishing (a task was stopped or failed).")
    deleted = ctx.storage.delete_prefix(layout.version_prefix(job.video_id, job.version))
    ctx.catalog.mark_version(job.video_id, job.version, VERSION_FAILED)
    log.info("Removed %d unpublished objects of %s version %d", deleted, job.video_id, job.version)


# Failure handling ---------------------------------------------------------------------------------------------
def _fail(ctx: Context, job: Job, error: BadInput) -> None:
    ctx.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code=error.code,
                     message=error.message)
    raise error


def describe_failure(exception: BaseException | None, task_id: str, attempts: int) -> tuple[str, str]:
    """(error_code, message) for the catalog: a bad-input reason as is, anything else summarised."""
    if isinstance(exception, BadInput):
        return exception.code, exception.message
    if isinstance(exception, VodflowError):
        return exception.code, f"{task_id} failed after {attempts} attempt(s): {exception.message}"
    detail = f"{type(exception).__name__}: {exception}" if exception else "the task was stopped"
    return errors.INTERNAL_ERROR, f"{task_id} failed after {attempts} attempt(s): {detail}"[:2000]


def record_failure(job_data: dict[str, Any] | None, step: str, work_label: str | None,
                   exception: BaseException | None, attempts: int, ctx: Context | None = None) -> None:
    """The failure of ``step`` (a task, or a step of ``prepare``), and of the work item ``work_label`` if any."""
    if not job_data:
        log.error("%s failed before the video was registered: %s", step, exception)
        return
    ctx = ctx or Context.load()
    job = Job.from_dict(job_data)
    code, message = describe_failure(exception, step, attempts)
    log.error("Video %s failed (%s): %s", job.video_id, code, message)
    for name in (work_label or "").split():  # a renditions item's label is its renditions' names
        ctx.catalog.rendition_failed(job.video_id, job.version, name, message)
    if ctx.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code=code, message=message):
        notify(ctx, job)


def notify(ctx: Context, job: Job) -> None:
    """POST the video's final state to the request's callback_url; a dead callback never fails the video."""
    if not job.callback_url:
        return
    import requests

    video = ctx.catalog.get_video(job.video_id) or {}
    body = {key: video.get(key) for key in ("id", "status", "error_code", "error_message", "current_version",
                                            "master_uri", "poster_uri", "duration")}
    try:
        requests.post(job.callback_url, json=body, timeout=10).raise_for_status()
    except requests.RequestException as exc:
        log.warning("Callback to %s failed: %s", job.callback_url, exc)


def _s3_uri(ctx: Context, key: str) -> str:
    return f"s3://{ctx.settings.bucket}/{key}"
