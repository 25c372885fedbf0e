"""``publish``: the teardown of ``prepare``, once every work item is done. When every item delivered, it joins a
chunked run, writes the playlists and switches the catalog; when one failed for good (its failure callback has
said why), it discards the unpublished version instead. Either way no scratch, no half version and no active
video is left behind (``discard_unpublished``, also called by the failure callback when publishing itself
fails for good).

One protocol makes it safe to run again after the worker died at any point (Airflow retries it):
1. Build — join, playlists (the master last), outputs, poster — only from what the work items left: the parked
   ``chunks/`` prefix (chunk pieces, audio, WebVTT) is still there, so a retry builds everything again.
2. Switch — one catalog transaction makes this version current and the video ``ready``.
3. Finish — remove the parked pieces, prune old versions, notify: each step safe to repeat, none able to fail the
   published video (pruning retries, then leaves a version for the next publish with a warning), notify once per
   event. A retry that finds the version already published (the catalog is the record of the switch) skips to
   here: the video is never set back to ``publishing`` and its live playlists are never written again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from vodflow import errors, layout
from vodflow.catalog import (
    PUBLISHING,
    VERSION_BUILDING,
    VERSION_DELETED,
    VERSION_FAILED,
    VERSION_PUBLISHED,
    Superseded,
    VariantRecord,
)
from vodflow.codec import decode
from vodflow.errors import MediaToolError, Permanent
from vodflow.layout import S3Location
from vodflow.media.encode.chunks import join_rendition
from vodflow.media.encode.ladder import LADDER_VERSION
from vodflow.media.encode.renditions import check_complete
from vodflow.media.measured import MeasuredRendition
from vodflow.media.package import hls
from vodflow.media.package.cmaf import join_pieces
from vodflow.media.pictures.thumbnails import POSTER
from vodflow.pipeline.auto_captions import auto_tracks, caption_outputs, optional_items
from vodflow.pipeline.ladder_decision import record_chunks_quality
from vodflow.pipeline.notify import notify
from vodflow.pipeline.outputs import EncodedRendition, OutputRecord, run_codec_tracks, run_encoded, run_publish
from vodflow.pipeline.outputs.subtitle_records import subtitle_records
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.subtitles import publish_subtitles
from vodflow.pipeline.work import AudioResult, ChunkResult, WholeVideoResult, WorkResult, result_from_dict

log = logging.getLogger(__name__)
CLEANUP_RETRY_SECONDS = (1.0, 3.0)  # waits between the tries of a cleanup step (a prune) before it is left for later


def publish(job: Job, plan: EncodePlan, results: list[WorkResult], services: Services | None = None
            ) -> dict[str, Any]:
    """Write every playlist (the multivariant one last), then switch the catalog to this version at once, then
    finish (the module's protocol: safe to run again from any point)."""
    services = services or Services.load()
    state = version_status(services, job)
    if state == VERSION_PUBLISHED:  # an earlier try switched the catalog and died after it: only finish
        log.info("Version %d of %s is already published (by an earlier try); finishing", job.version, job.video_id)
        finish_published(services, job)
        return published_summary(services, job)
    if state != VERSION_BUILDING:  # failed, pruned or discarded meanwhile: nothing of it may become current
        log.warning("Not publishing version %d of %s: it is %s", job.version, job.video_id, state or "gone")
        return {"video_id": job.video_id, "version": job.version, "published": False}
    current = (services.catalog.get_video(job.video_id) or {}).get("current_version")
    if current is not None and current > job.version:  # e.g. an earlier try found it so and died removing it
        return _superseded(services, job, f"version {current} of {job.video_id} is newer")
    services.catalog.set_status(job.video_id, job.run_id, PUBLISHING)
    plan = encoded_plan(plan, results)
    if plan.chunks:
        renditions, made = join_chunks(services, job, plan, results)
        record_chunks_quality(services, job, [r for r in results if isinstance(r, ChunkResult)])
    else:
        renditions = [m for r in results if isinstance(r, WholeVideoResult) for m in r.measured]
        made = [o for r in results if isinstance(r, WholeVideoResult) for o in r.outputs]
    pictures = {key for r in results if isinstance(r, WholeVideoResult | ChunkResult) for key in r.pictures}
    audio = next((list(r.audio) for r in results if isinstance(r, WholeVideoResult | AudioResult) and r.audio), [])
    embedded = [t for r in results if isinstance(r, WholeVideoResult | AudioResult) for t in r.subtitles]
    subtitles = publish_subtitles(services, job, renditions, embedded, auto_tracks(results))
    target, playlists = hls.render_playlists(renditions, audio, subtitles)
    if audio:  # the UI lists what a viewer can choose
        services.catalog.add_event(job.video_id, "audio_tracks", tracks=[
            {"name": a.title, "language": a.language, "default": a.in_variants} for a in audio])
    prefix = layout.hls_prefix(job.video_id, job.version)
    master = playlists.pop(hls.MASTER_PLAYLIST)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: services.storage.put_text(prefix + item[0], item[1]), playlists.items()))
    services.storage.put_text(prefix + hls.MASTER_PLAYLIST, master)  # last: a complete tree, or no master at all
    variants = [VariantRecord(stats.name, stats.bandwidth, stats.average_bandwidth,
                              services.s3_uri(prefix + r.playlist_uri))
                for r in renditions for stats in [hls.variant_stats(r, target)]]
    master_uri = services.s3_uri(prefix + hls.MASTER_PLAYLIST)
    outputs = run_publish(services, job, plan, renditions, [*made, *subtitle_records(job, subtitles)])
    outputs += caption_outputs(results)
    poster_key = layout.thumbs_prefix(job.video_id, job.version) + POSTER
    if poster_key not in pictures:  # pictures are best effort: never a reason to withhold a video
        _poster_from_a_thumbnail(services, job, poster_key, pictures)
    try:
        older = services.catalog.publish(
            video_id=job.video_id, run_id=job.run_id, version=job.version, master_uri=master_uri,
            poster_uri=services.s3_uri(poster_key) if poster_key in pictures else None,
            ladder_version=LADDER_VERSION, variants=variants,
            outputs=[o.to_dict() for o in [hls_record(job, renditions, prefix + hls.MASTER_PLAYLIST), *outputs]])
    except Superseded as exc:
        return _superseded(services, job, str(exc))
    log.info("Published %s version %d: %s (%d older published version(s))", job.video_id, job.version,
             master_uri, len(older))
    finish_published(services, job)
    return {"video_id": job.video_id, "version": job.version, "published": True, "master_uri": master_uri,
            "target_duration": target, "variants": [asdict(v) for v in variants]}


def _superseded(services: Services, job: Job, reason: str) -> dict[str, Any]:
    """A newer version is current: this one is removed (objects first, then the mark: a retry redoes both)."""
    log.warning("Not publishing version %d: %s", job.version, reason)
    services.storage.delete_prefix(layout.version_prefix(job.video_id, job.version))
    services.catalog.mark_version(job.video_id, job.version, VERSION_DELETED)
    return {"video_id": job.video_id, "version": job.version, "published": False}


def version_status(services: Services, job: Job) -> str | None:
    """This run's version as the catalog has it (building, published, failed, deleted); None if it has no row."""
    return next((v["status"] for v in services.catalog.get_versions(job.video_id) if v["version"] == job.version),
                None)


def finish_published(services: Services, job: Job) -> None:
    """Everything after the switch, each step safe to repeat and none able to fail the published video."""
    cleaned = _retried(f"remove the parked pieces of version {job.version}",
                       lambda: services.storage.delete_prefix(layout.chunks_prefix(job.video_id, job.version)))
    if not cleaned:  # they go with the version when it is pruned
        services.catalog.add_event(job.video_id, "warning", message=f"The intermediate files of version "
                                   f"{job.version} could not be removed yet; they go when the version is pruned.")
    prune_old_versions(services, job.video_id)
    notify(services, job)


def prune_old_versions(services: Services, video_id: str) -> list[int]:
    """Remove published versions older than the current one beyond ``keep_old_versions``; returns those removed.
    A version whose objects cannot all be deleted (``delete_objects`` answering ``Errors``, S3 away) stays
    ``published`` with a warning: the next publish of the video prunes it."""
    video = services.catalog.get_video(video_id)
    current = video and video["current_version"]
    if not current:
        return []
    older = sorted((v["version"] for v in services.catalog.get_versions(video_id)
                    if v["status"] == VERSION_PUBLISHED and v["version"] < current), reverse=True)
    pruned = []
    for old in older[services.settings.keep_old_versions:]:
        prefix = layout.version_prefix(video_id, old)
        if _retried(f"prune version {old} of {video_id}", lambda prefix=prefix: services.storage.delete_prefix(prefix)):
            services.catalog.mark_version(video_id, old, VERSION_DELETED)  # after its objects: a retry redoes both
            pruned.append(old)
        else:
            services.catalog.add_event(video_id, "warning", message=f"Old version {old} could not be removed yet; "
                                       "it will be pruned after the next publish.")
    return pruned


def _retried(what: str, step: Callable[[], object]) -> bool:
    """Run a cleanup step, retrying a failure a few times; False (and a warning in the log) if it never worked."""
    for wait in (*CLEANUP_RETRY_SECONDS, None):
        try:
            step()
            return True
        except Exception as exc:  # S3 errors of any kind (ClientError, the hook's AirflowException for Errors)
            if wait is None:
                log.warning("Could not %s: %s; left for later", what, exc)
                return False
            log.info("Could not %s (%s); trying again in %g s", what, exc, wait)
            time.sleep(wait)
    return False


def published_summary(services: Services, job: Job) -> dict[str, Any]:
    """What ``publish`` returns, read back from the catalog (a retry after the switch has no playlists at hand)."""
    video = services.catalog.get_video(job.video_id) or {}
    variants = [VariantRecord(r["name"], r["bandwidth"], r["average_bandwidth"], r["playlist_uri"])
                for r in services.catalog.get_renditions(job.video_id, job.version) if r["playlist_uri"]]
    return {"video_id": job.video_id, "version": job.version, "published": True,
            "master_uri": services.s3_uri(layout.hls_prefix(job.video_id, job.version) + hls.MASTER_PLAYLIST),
            "current": video.get("current_version") == job.version, "variants": [asdict(v) for v in variants]}


def _poster_from_a_thumbnail(services: Services, job: Job, poster_key: str, pictures: set[str]) -> None:
    """No poster frame could be decoded: the first thumbnail the encode did make stands in (smaller, another
    instant); with none either, the video is published without a picture. Either way a warning event says so."""
    thumbnails = sorted(key for key in pictures if key != poster_key)
    if thumbnails:
        services.storage.copy_key(thumbnails[0], poster_key)
        pictures.add(poster_key)
        name = thumbnails[0].rsplit("/", 1)[1]
        log.warning("No poster frame could be made; the thumbnail %s stands in", name)
        services.catalog.add_event(job.video_id, "warning", message=f"No poster frame could be made; thumbnail "
                                   f"{name} is the poster.")
        return
    log.warning("No poster was made; publishing without one")
    services.catalog.add_event(job.video_id, "warning", message="No poster could be made; published without one.")


class WorkItemsFailed(Permanent):
    """Some work item failed for good, so there is nothing to publish; its own failure gave the video's reason."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.INTERNAL_ERROR, message)


def publish_dicts(job: dict[str, Any], plan: dict[str, Any], items: list[dict[str, Any]],
                  results: list[dict[str, Any]], services: Services | None = None) -> dict[str, Any]:
    """The task boundary: XCom dicts in, typed values inside. A work item that failed for good left no result."""
    run, services = decode(Job, job), services or Services.load()
    try:
        required, delivered = optional_items(items, results)  # a captions item that died is not a failed video
        if delivered < required:
            discard_unpublished(run, services)
            raise WorkItemsFailed(f"{required - delivered} of {required} work item(s) failed; nothing was "
                                  "published")
        return publish(run, decode(EncodePlan, plan), [result_from_dict(r) for r in results], services)
    finally:
        clean_scratch(run, services)


def encoded_plan(plan: EncodePlan, results: list[WorkResult]) -> EncodePlan:
    """The plan with the ladder the items encoded: a per-title run decides it on the transcode worker, after
    ``prepare`` planned the fixed one; every later step (joins, playlists, outputs) must use that one."""
    ladders = {r.renditions for r in results if isinstance(r, WholeVideoResult | ChunkResult) and r.renditions}
    if len(ladders) > 1:  # one ladder decision for the whole video, or the joined rungs would change rate
        raise MediaToolError("the chunks of this per-title run encoded different ladders")
    return plan.with_ladder(ladders.pop()) if ladders else plan


def hls_record(job: Job, renditions: list[MeasuredRendition], master_key: str) -> OutputRecord:
    """The TS tree as one output: its multivariant playlist, every segment's bytes, the top variant's codecs."""
    return OutputRecord(kind="hls", name="master", key=master_key, bytes=sum(r.bytes for r in renditions),
                        content_type=layout.content_type(master_key), duration=round(renditions[0].duration, 3),
                        codecs=renditions[0].codecs)


def join_chunks(services: Services, job: Job, plan: EncodePlan, results: list[WorkResult]
                ) -> tuple[list[MeasuredRendition], list[OutputRecord]]:
    """A chunked encode, per rendition, joined into one continuous HLS rendition (stream copy) and uploaded;
    the optional outputs are made from each joined rendition here, as ``transcode`` makes them from a whole one."""
    chunks = sorted((r for r in results if isinstance(r, ChunkResult)), key=lambda r: r.index)
    audio = next((r.keys for r in results if isinstance(r, AudioResult)), {})
    if len(chunks) != plan.chunks:
        raise MediaToolError(f"{len(chunks)} of {plan.chunks} chunks were encoded")
    workdir = services.scratch(job) / "join"
    parts_dir = workdir / "parts"

    def local(key: str) -> str:
        return str(parts_dir / key.rsplit("/", 1)[1])

    measured_all, made = [], []
    try:
        parts_dir.mkdir(parents=True, exist_ok=True)
        for key in [k for r in chunks for k in r.keys.values()] + list(audio.values()):
            services.storage.download(S3Location(services.storage.bucket, key), local(key))
        joined = []  # the other codecs: each rendition's fMP4 pieces, one track, cut on the top H.264 grid
        # below; joined first, so an output of an H.264 rendition may reuse its rung (a WebM copies the AV1)
        for rendition in plan.cmaf_renditions:
            path = str(workdir / f"{rendition.name}.mp4")
            join_pieces([local(r.keys[rendition.name]) for r in chunks], path, [r.first_frame for r in chunks],
                        rendition.fps)
            joined.append((rendition, path))
        for rendition in plan.renditions:
            out_dir = workdir / rendition.name
            measured = join_rendition([local(r.keys[rendition.name]) for r in chunks],
                                      local(audio[str(rendition.audio_kbps)]) if rendition.audio_kbps else None,
                                      str(out_dir), rendition, services.settings.encoder)
            # Chunks past a truncated end come out empty.
            check_complete(measured.duration, plan.duration, services.settings.encoder.segment_seconds)
            services.storage.upload_tree(str(out_dir), f"{layout.hls_prefix(job.video_id, job.version)}"
                                         f"{rendition.name}/", exclude=("index.m3u8",))
            services.catalog.rendition_done(job.video_id, job.version, rendition.name, codecs=measured.codecs,
                                            bytes_=measured.bytes, segments=len(measured.segments))
            measured_all.append(measured)
            made += run_encoded(services, job, plan, [EncodedRendition(rendition, measured, str(out_dir))],
                                str(workdir / "outputs"), {r.name: path for r, path in joined})
            shutil.rmtree(out_dir, ignore_errors=True)
        run_codec_tracks(services, job, plan, measured_all[0], joined, str(workdir / "codec-outputs"))
        return measured_all, made
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def clean_scratch(job: Job, services: Services) -> None:
    """This machine's scratch for the run, and the video's folder once no version of it is worked on here."""
    scratch = services.scratch(job)
    shutil.rmtree(scratch, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(scratch.parent)


def discard_unpublished(job: Job, services: Services | None = None) -> None:
    """A run that ends without publishing leaves nothing: its version's objects are removed and the video is not
    left active. Idempotent: the failure callback may call it again after ``publish`` did."""
    services = services or Services.load()
    clean_scratch(job, services)
    versions = {v["version"]: v for v in services.catalog.get_versions(job.video_id)}
    mine = versions.get(job.version)
    if mine and mine["status"] == VERSION_PUBLISHED:
        return
    if services.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version,
                             code=errors.INTERNAL_ERROR, message="The run ended without publishing (a task was "
                             "stopped or failed)."):
        notify(services, job)  # no failure callback ran (a killed task): this is the terminal state
    deleted = services.storage.delete_prefix(layout.version_prefix(job.video_id, job.version))
    services.catalog.mark_version(job.video_id, job.version, VERSION_FAILED)
    log.info("Removed %d unpublished objects of %s version %d", deleted, job.video_id, job.version)
