"""``prepare``: register → probe → plan, one task. Each step is too short to pay a task's start-up of its own
(≈0.5 CPU s and a scheduler hop); the failure callback still names the step that failed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from vodflow import errors, layout
from vodflow.catalog import PROBING, OtherSource, RenditionPlan, UploadObject
from vodflow.codec import encode
from vodflow.dag_ids import UPLOAD_RUN_PREFIX
from vodflow.errors import BadInput
from vodflow.integrations.netguard import DestinationRefused
from vodflow.integrations.webhooks import check_callback
from vodflow.layout import S3Location, parse_source_uri
from vodflow.media.encode import codecs as video_codecs
from vodflow.media.encode import hdr
from vodflow.media.encode.chunks import plan_chunks
from vodflow.media.encode.ladder import LADDER_VERSION, Rendition, plan_ladder, resolve_rungs
from vodflow.media.package import hls
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.probe import check_limits, check_size, probe
from vodflow.pipeline import auto_captions
from vodflow.pipeline.failures import fail_now
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.subtitles import check_caption_sizes
from vodflow.pipeline.watermarks import fetch_watermarks, imposed
from vodflow.pipeline.work import WorkItem, plan_items
from vodflow.request import (
    MP4_CHOICES,
    RequestError,
    check_fields,
    check_source_allowed,
    kept_request,
    run_codecs,
    run_outputs,
    unknown_fields,
)
from vodflow.settings import Settings

log = logging.getLogger(__name__)
StepListener = Callable[[str, Job | None], None]


def prepare(params: dict[str, Any], run_id: str, on_step: StepListener,
            services: Services | None = None) -> tuple[Job, SourceInfo, EncodePlan, list[WorkItem]]:
    """``on_step(name, job)`` is told each step as it starts, so a failure can name its step and reach the video."""
    services = services or Services.load()
    on_step("register", None)
    job = register(params, run_id, services)
    job = fetch_watermarks(services, job, params)  # still "register": a bad image is invalid_request
    on_step("probe", job)
    probed = probe_source(services, job)
    on_step("plan", job)
    plan, items = plan_work(services, job, probed)
    return job, probed, plan, items


def register(params: dict[str, Any], run_id: str, services: Services) -> Job:
    """Validate the request, identify the video, create or claim its catalog row and allocate a version."""
    raw_source = str(params.get("source") or "")
    ladder = params.get("ladder") or services.settings.default_ladder
    problem: str | None = None
    callback_url = params.get("callback_url")
    settings = services.settings
    outputs = list(params.get("outputs") or settings.outputs)
    mp4_renditions = _mp4_renditions(params, settings.mp4_renditions)
    loudness = settings.loudness if params.get("loudness") is None else params["loudness"]
    true_peak = (settings.loudness_true_peak if params.get("loudness_true_peak") is None
                 else params["loudness_true_peak"])
    codecs: tuple[str, ...] = (video_codecs.H264,)
    watcher_run = run_id.startswith(UPLOAD_RUN_PREFIX)
    try:
        location = parse_source_uri(raw_source)
        resolve_rungs(ladder)
        # Re-checked here for runs started past the checked trigger and its guard (e.g. `airflow dags trigger`).
        check_sources_allowed(params, settings)
        unknown = unknown_fields(params)  # Airflow's Params let any extra key through: nothing is encoded
        if unknown is not None:
            raise unknown
        # The settings' defaults obey the conf's rules (a bad setting fails the run here, not mid-encode).
        check_fields({"outputs": outputs, "mp4_renditions": mp4_renditions, "loudness": loudness,
                      "loudness_true_peak": true_peak})
        codecs = check_codecs(params.get("codecs"), settings)
        outputs = run_outputs(outputs, codecs)
        imposed(settings.watermark)
    except ValueError as exc:
        problem = str(exc)
        location = S3Location("invalid", raw_source[:200] or "empty")
    if problem is None:
        try:
            check_callback(callback_url, settings.webhook_allowed_hosts)
        except DestinationRefused as exc:
            problem, callback_url = str(exc), None  # never call a refused destination, not even to say so
    info = None
    missing: BadInput | None = None
    if problem is None:
        try:
            info = services.storage.head(location)
        except BadInput as exc:
            missing = exc
    video_id = params.get("video_id") or layout.derive_video_id(location.bucket, location.key,
                                                                info.etag if info else "")
    adaptive = services.settings.adaptive_ladder if params.get("adaptive") is None else params["adaptive"]
    job = Job(video_id=video_id, version=0, run_id=run_id,
              source_uri=location.uri if problem is None else raw_source[:1100],  # record what was asked for
              etag=info.etag if info else "", size=info.size if info else 0,
              title=params.get("title") or layout.title_from_key(location.key), ladder=ladder,
              callback_url=callback_url, adaptive=bool(adaptive),
              chunk_seconds=params.get("chunk_seconds"), notify_email=params.get("notify_email"),
              captions=params.get("captions") or None,
              outputs=outputs, mp4_renditions=mp4_renditions, auto_captions=params.get("auto_captions"),
              codecs=codecs,
              # Checked above (a problem fails the run before anything reads them).
              loudness=None if problem is not None or loudness is None or loudness is False else float(loudness),
              loudness_true_peak=-1.0 if problem is not None else float(true_peak))
    try:
        version = services.catalog.register(
            video_id=job.video_id, source_uri=job.source_uri, etag=job.etag, size=job.size, title=job.title,
            run_id=run_id, ladder_version=LADDER_VERSION, uploaded_at=info.last_modified if info else None,
            request=kept_request(params, job.video_id),  # what a retry or reprocess reuses
            # A watcher's run queued behind an app's run for the same object (which the watcher could not know
            # about while that run waited for a slot) stands down instead of encoding it again.
            once_per_object=watcher_run)
    except OtherSource:
        # Not this run's video: nothing of it is touched (no failure recorded on it, no callback told).
        raise BadInput(errors.INVALID_REQUEST, f"Invalid request: video_id {job.video_id!r} is the id of a video "
                                               "made from another source, and a video's source never changes; "
                                               "leave video_id out or choose a new one.") from None
    if info is not None and info.last_modified is not None and not watcher_run:
        # Started by an app (or a retry): the watcher must not start this object again.
        services.catalog.record_app_upload(UploadObject(location.bucket, location.key, info.etag, info.size,
                                                        info.last_modified), job.video_id, run_id)
    job = replace(job, version=version)
    log.info("Video %s version %d from %s (%d bytes)", job.video_id, version, job.source_uri, job.size)
    if problem is not None:
        fail_now(services, job, BadInput(errors.INVALID_REQUEST, f"Invalid request: {problem}."))
    if missing is not None:
        fail_now(services, job, missing)
    return job


def check_sources_allowed(conf: Mapping[str, Any], settings: Settings) -> None:
    """RequestError (field ``source``, ``captions`` or ``watermark``) unless every object the run would read — its
    source, each sidecar caption and its watermark image — is a valid S3 URI in the source allowlist.

    One check for both doors: the checked trigger (``check_conf``, a 400 before any run exists) and ``register``
    (``invalid_request`` for runs started any other way). A caption is read by the workers like the source, so a
    caption in a foreign bucket is as much a way to read it as a source there would be."""
    _check_allowed("source", "source", conf.get("source"), settings)
    for index, caption in enumerate(conf.get("captions") or []):
        _check_allowed("captions", f"captions[{index}].source",
                       caption.get("source") if isinstance(caption, Mapping) else None, settings)
    mark = conf.get("watermark")
    if mark:  # the encode reads it like the source
        _check_allowed("watermark", "watermark.image", mark.get("image") if isinstance(mark, Mapping) else None,
                       settings)


def check_codecs(requested: Any, settings: Settings) -> tuple[str, ...]:
    """The run's codecs (the request's, else the setting's), or RequestError (field ``codecs``) when one is unknown,
    the value has the wrong type, or this machine's ffmpeg cannot encode one. One check for both doors, like
    ``check_sources_allowed``: a 400 at trigger, ``invalid_request`` at register for runs started otherwise."""
    codecs = run_codecs(requested, settings.codecs)
    missing = video_codecs.unavailable(codecs)
    if missing:
        raise RequestError("codecs", f"codecs: this installation cannot encode {', '.join(missing)} (its ffmpeg "
                                     f"has no {', '.join(video_codecs.CODECS[c].encoder for c in missing)})")
    return codecs


def _check_allowed(field: str, label: str, uri: Any, settings: Settings) -> None:
    try:
        location = parse_source_uri(str(uri or ""))
        check_source_allowed(location.uri, settings.allowed_source_buckets, settings.source_prefixes)
    except ValueError as exc:  # RequestError included: its message starts with "source: "
        raise RequestError(field, f"{label}: {str(exc).removeprefix('source: ')}") from None


def _mp4_renditions(params: dict[str, Any], setting: tuple[str, ...]) -> str | list[str]:
    """The run's choice, else the setting's ("top"/"all" alone is the word, otherwise rung names)."""
    if params.get("mp4_renditions"):
        return params["mp4_renditions"]
    return setting[0] if len(setting) == 1 and setting[0] in MP4_CHOICES else list(setting)


def probe_source(services: Services, job: Job) -> SourceInfo:
    """Read the source's container headers (not the whole file) and refuse what we cannot transcode."""
    services.catalog.set_status(job.video_id, job.run_id, PROBING)
    if job.size == 0:
        raise BadInput(errors.EMPTY_FILE, "The file is empty (0 bytes).")
    limits = services.settings.limits
    check_size(job.size, limits.max_size_bytes)
    check_caption_sizes(services, job.captions)  # before anything reads them or encodes the video
    probed = probe(services.source_url(job), job.size, services.storage.read_head(job.location))
    check_limits(probed, limits)
    services.catalog.record_source(job.video_id, job.run_id, probed)
    log.info("Source: %dx%d %s fps %.2f s, %s%s%s%s", probed.width, probed.height, probed.fps, probed.duration,
             probed.video_codec, " +audio" if probed.has_audio else " (no audio)", " HDR" if probed.hdr else "",
             " interlaced" if probed.interlaced else "")
    return probed


def plan_work(services: Services, job: Job, probed: SourceInfo) -> tuple[EncodePlan, list[WorkItem]]:
    """The fixed ladder, its `pending` renditions, and the work items ``transcode`` is mapped over: the whole
    video, or for a long source one per chunk plus the audio. A per-title run's ladder is decided by its work
    items, on a ``transcode`` worker (``pipeline.ladder_decision``): the probe encodes, and this runs on ``default``."""
    ladder = plan_ladder(probed.width, probed.height, probed.fps, probed.has_audio, job.ladder)
    others = other_codec_renditions(ladder.renditions, job.codecs, probed)
    services.catalog.plan_renditions(job.video_id, job.run_id, job.version,
                                     [rendition_plan(r) for r in (*ladder.renditions, *others)])
    log.info("Ladder v%d: %s", ladder.version,
             ", ".join(f"{r.name} {r.width}x{r.height} {r.video_kbps}k" for r in (*ladder.renditions, *others)))
    fps = ladder.renditions[0].fps
    chunk_seconds = job.chunk_seconds
    if chunk_seconds is None:
        long = probed.duration > services.settings.chunk_threshold_seconds
        chunk_seconds = services.settings.chunk_seconds if long else 0
    skipped = [t for t in probed.subtitle_tracks if not t.text]
    if skipped:  # bitmap subtitles (PGS, DVB) are pictures: no WebVTT can carry them
        services.catalog.add_event(job.video_id, "subtitles_skipped", tracks=[
            {"index": t.index, "codec": t.codec, "language": t.language,
             "reason": f"{t.codec} subtitles are bitmaps; only text subtitles become WebVTT"} for t in skipped])
    if probed.discontinuous:  # a seek by time is ambiguous when the clock restarts: one continuous encode
        services.catalog.add_event(job.video_id, "warning", message="The source's timestamps jump (e.g. two "
                                   "recordings in one file); it is encoded in one piece with continuous timestamps.")
        chunk_seconds = 0
    length = probed.picture_end  # what is published: sound running on after the picture is cut
    chunks = plan_chunks(length, fps, chunk_seconds) if chunk_seconds else []
    plan = EncodePlan(renditions=tuple(ladder.renditions), duration=length, cmaf_renditions=others,
                      pictures=plan_pictures(probed.width, probed.height, length, fps,
                                             [c.first_frame for c in chunks] if len(chunks) > 1 else ()),
                      chunks=len(chunks) if len(chunks) > 1 else 0)
    if plan.chunks:
        services.catalog.add_event(job.video_id, "chunked", chunks=plan.chunks, seconds=chunks[1].start)
        log.info("Encoding in %d chunks of %g s", plan.chunks, chunks[1].start)
    captions = auto_captions.requested({"auto_captions": job.auto_captions}, services.settings.auto_captions)
    if captions is not None and not probed.has_audio:  # nothing to hear: said, not silently dropped
        services.catalog.add_event(job.video_id, auto_captions.EVENT, status="none", reason="the source has no sound",
                                   message="No automatic captions: the source has no sound.")
    return plan, plan_items(plan, chunks, probed.has_audio, any(t.text for t in probed.subtitle_tracks),
                            per_title=job.adaptive, captions=captions)


def other_codec_renditions(ladder: tuple[Rendition, ...], codecs: tuple[str, ...], probed: SourceInfo
                           ) -> tuple[Rendition, ...]:
    """Every codec but H.264's renditions of the H.264 ``ladder`` (``plan.cmaf_renditions``), each in the dynamic
    range that codec keeps of the source. A per-title run's are re-derived from its decided ladder by its work
    item (``transcode``), as its H.264 rungs are."""
    return tuple(r for codec in codecs if codec != video_codecs.H264
                 for r in video_codecs.codec_ladder(tuple(ladder), codec, hdr.dynamic_range(probed, codec)))


def rendition_plan(r: Rendition) -> RenditionPlan:
    """A rendition's catalog row, as planned (``pending``)."""
    return RenditionPlan(r.name, r.width, r.height, r.video_kbps, r.audio_kbps, round(hls.frame_rate_value(r.fps), 3),
                         codec=r.codec, dynamic_range=r.dynamic_range)


def prepare_dicts(params: dict[str, Any], run_id: str, on_step: StepListener,
                  services: Services | None = None) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The task boundary: the job, the probed source and the plan by these names (the DAG writes them as one XCom,
    ``callbacks.RUN``), and the work items ``transcode`` is mapped over, as JSON."""
    job, probed, plan, items = prepare(params, run_id, on_step, services)
    return {"job": encode(job), "probed": encode(probed), "plan": encode(plan)}, [encode(item) for item in items]
