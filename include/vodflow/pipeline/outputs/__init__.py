"""Optional outputs (``outputs`` in the conf): one handler per kind, dispatched through ``HANDLERS``.

``hls`` (the TS tree) is the pipeline's own and has no handler. Every other kind a run asks for gets its
handler's ``encoded`` on each locally encoded rendition (``run_encoded``: from ``transcode`` for a whole video,
from ``publish``'s join for a chunked one) and its ``publish`` before the catalog switch (``run_publish``); what
they made is uploaded under the version prefix and recorded with the version in the same transaction as the
switch. docs/ARCHITECTURE.md, *Outputs*, has the layout and the rules.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from vodflow import layout
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.renditions import AAC_LC
from vodflow.media.measured import MeasuredRendition
from vodflow.media.package.cmaf import CmafTrack
from vodflow.pipeline.outputs.base import (
    EncodedRendition,
    OutputContext,
    OutputFile,
    OutputHandler,
    OutputRecord,
)
from vodflow.pipeline.outputs.cmaf import Cmaf
from vodflow.pipeline.outputs.downloads import AudioDownloads, Mp4Downloads
from vodflow.pipeline.outputs.storyboard import Storyboard
from vodflow.pipeline.outputs.webm import WebmDownloads

if TYPE_CHECKING:
    from vodflow.pipeline.plan import EncodePlan
    from vodflow.pipeline.services import Job, Services

__all__ = ["HANDLERS", "EncodedRendition", "OutputContext", "OutputFile", "OutputHandler", "OutputRecord",
           "handlers_for", "output_kinds", "run_codec_tracks", "run_encoded", "run_publish"]
log = logging.getLogger(__name__)

# Every optional kind and its handler; request.OUTPUT_KINDS names them all ("hls" is the pipeline's own).
HANDLERS: dict[str, OutputHandler] = {handler.kind: handler for handler in (
    Mp4Downloads(), WebmDownloads(), AudioDownloads(), Storyboard(), Cmaf())}
CORE = ("hls",)


def handlers_for(outputs: list[str]) -> list[OutputHandler]:
    """The handlers of the kinds a job asks for, in the job's order; a kind nobody handles is an error."""
    unknown = [kind for kind in outputs if kind not in HANDLERS and kind not in CORE]
    if unknown:
        raise ValueError(f"no handler for output kind(s) {', '.join(unknown)}")
    return [HANDLERS[kind] for kind in outputs if kind in HANDLERS]


def output_kinds(job: Job, plan: EncodePlan) -> list[str]:
    """The kinds a run makes: what it asked for, and ``cmaf`` whenever other codecs are encoded (they exist only
    as CMAF, listed in its master and MPD beside the H.264 tracks)."""
    kinds = list(job.outputs)
    if plan.cmaf_renditions and Cmaf.kind not in kinds:
        kinds.append(Cmaf.kind)
    return kinds


def run_encoded(services: Services, job: Job, plan: EncodePlan, encoded: list[EncodedRendition],
                workdir: str, codec_tracks: dict[str, str] | None = None) -> tuple[OutputRecord, ...]:
    """Each asked-for handler on each rendition just encoded here; its files uploaded, its records returned.
    ``codec_tracks``: the other codecs' renditions encoded here (``OutputContext.codec_tracks``).
    ``workdir`` is removed after. One ``outputs`` event says what each kind cost (seconds, bytes)."""
    handlers = handlers_for(output_kinds(job, plan))
    if not handlers or not encoded:
        return ()
    records: list[OutputRecord] = []
    cost: dict[str, dict[str, float]] = {}
    try:
        for handler in handlers:
            started = time.monotonic()
            ctx = OutputContext(job, plan, services.settings, os.path.join(workdir, handler.kind),
                                codec_tracks or {})
            os.makedirs(ctx.workdir, exist_ok=True)
            made = [f for e in encoded for f in handler.encoded(ctx, e)]
            made_bytes = sum(os.path.getsize(f.path) for f in made)  # listed or not (CMAF's are all unlisted)
            records += upload(services, job, made)
            cost[handler.kind] = {"seconds": round(time.monotonic() - started, 3), "bytes": made_bytes}
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("Outputs for %s: %s", ", ".join(e.rendition.name for e in encoded),
             ", ".join(f"{k} {v['seconds']:.2f} s {v['bytes'] / 1e6:.2f} MB" for k, v in cost.items()))
    _best_effort_event(services, job, renditions=[e.rendition.name for e in encoded], cost=cost)
    return tuple(records)


def upload(services: Services, job: Job, made: list[OutputFile]) -> list[OutputRecord]:
    """Upload a handler's files under the version prefix (in parallel); the records of the listed ones."""
    prefix = layout.version_prefix(job.video_id, job.version)

    def one(f: OutputFile) -> OutputRecord:
        disposition = layout.content_disposition(f.filename) if f.filename else None
        size = services.storage.upload_file(f.path, prefix + f.key, disposition=disposition)
        return OutputRecord.of_file(f, prefix + f.key, size)

    with ThreadPoolExecutor(max_workers=8) as pool:
        records = list(pool.map(one, made))
    return [r for r, f in zip(records, made, strict=True) if f.listed]


def run_publish(services: Services, job: Job, plan: EncodePlan, renditions: list[MeasuredRendition],
                records: list[OutputRecord]) -> list[OutputRecord]:
    """Every record of the run: those the encodes made and what each handler's ``publish`` adds."""
    everything = list(records)
    for handler in handlers_for(output_kinds(job, plan)):
        everything += handler.publish(services, job, plan, renditions, list(everything))
    return everything


def run_codec_tracks(services: Services, job: Job, plan: EncodePlan, grid: MeasuredRendition,
                     encoded: list[tuple[Rendition, str]], workdir: str) -> list[CmafTrack]:
    """The other codecs' renditions encoded here (each one fragmented MP4 at its path) as CMAF tracks on the H.264
    grid (``grid``: the top H.264 rendition as measured), uploaded under ``cmaf/``; each marked done in the
    catalog. ``workdir`` is removed after; one ``outputs`` event says what they cost."""
    if not encoded:
        return []
    started = time.monotonic()
    tracks, made = [], []
    try:
        ctx = OutputContext(job, plan, services.settings, os.path.join(workdir, "codecs"))
        for rendition, path in encoded:
            track, files = Cmaf().codec_encoded(ctx, rendition, path, grid)
            tracks.append(track)
            made += files
        made_bytes = sum(os.path.getsize(f.path) for f in made)
        upload(services, job, made)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for track in tracks:  # what the catalog lists: the variant's codecs, its audio's too (as the TS ones')
        services.catalog.rendition_done(job.video_id, job.version, track.name,
                                        codecs=f"{track.codec},{AAC_LC}" if track.audio else track.codec,
                                        bytes_=track.bytes, segments=len(track.segments))
    _best_effort_event(services, job, renditions=[r.name for r, _ in encoded], cost={
        Cmaf.kind: {"seconds": round(time.monotonic() - started, 3), "bytes": made_bytes}})
    return tracks


def _best_effort_event(services: Services, job: Job, **fields: object) -> None:
    try:
        services.catalog.add_event(job.video_id, "outputs", **fields)
    except Exception:  # a measurement is never a reason to fail outputs that were made
        log.exception("Could not record the outputs' cost")
