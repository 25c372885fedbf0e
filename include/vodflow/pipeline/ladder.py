"""The per-title ladder decision, made on a ``transcode`` worker (the probe encodes; ``prepare`` runs on the
light ``default`` queue): the first thing an adaptive run's work item does, before it encodes.

An unchunked video is one work item, so it decides once. Every chunk of a chunked run decides for itself, from
the same windows of the same source with single-threaded, deterministic trial encodes, so all of them reach the
same ladder; each chunk's result carries the ladder it encoded and ``publish`` refuses chunks that disagree.
Only the first chunk writes the decision to the catalog.

A per-title run's renditions are then scored (``record_quality``): VMAF in the catalog, the API and the UI.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import replace

from vodflow.catalog import RenditionPlan
from vodflow.media import hls
from vodflow.media.hls import MeasuredRendition
from vodflow.media.ladder import Ladder
from vodflow.media.probe import SourceInfo
from vodflow.media.quality_ladder import quality_ladder
from vodflow.media.quality_probe import probe_quality, sample_windows
from vodflow.media.vmaf import score_renditions
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.work import EncodePlan

log = logging.getLogger(__name__)
QUALITY_WINDOW_SECONDS = 2.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def decided_plan(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan, record: bool) -> EncodePlan:
    """The plan with the per-title ladder when the run is adaptive (else ``plan`` as it is); ``record``: write
    the rungs and the decision (``ladder_decided``, with what each rung measured) to the catalog."""
    if not job.adaptive:
        return plan
    started = children_cpu()
    trials = probe_quality(services.source_url(job, probed), probed, list(plan.renditions),
                           services.settings.encoder)
    ladder, choices = quality_ladder(Ladder(version=0, renditions=plan.renditions), trials,
                                     services.settings.quality)
    cpu = round(children_cpu() - started, 2)
    log.info("Per-title ladder (probe %.1f CPU s): %s", cpu,
             ", ".join(f"{c.name} {c.fixed_kbps}→{c.kbps}k ({c.reason})" for c in choices))
    if record:
        services.catalog.plan_renditions(job.video_id, job.run_id, job.version, [
            RenditionPlan(r.name, r.width, r.height, r.video_kbps, r.audio_kbps,
                          round(hls.frame_rate_value(r.fps), 3)) for r in ladder.renditions])
        services.catalog.add_event(job.video_id, "ladder_decided", probe_cpu_seconds=cpu,
                                   rungs=[c.to_dict() for c in choices],
                                   trials=[t.to_dict() for t in trials.values()])
    return replace(plan, renditions=ladder.renditions)


def quality_windows(measured: list[MeasuredRendition], hls_dir: str) -> list[tuple[float, float, list[str]]]:
    """Where the renditions are scored: 2 s from the start of the segments nearest 20/50/80 % of the video, read
    from the segment files themselves (a rendition's segment starts with an IDR frame at the same instant in
    every rendition: nothing is decoded only to be skipped, as seeking in the playlist would)."""
    segments = measured[0].segments
    starts = [sum(s.duration for s in segments[:k]) for k in range(len(segments))]
    duration = starts[-1] + segments[-1].duration
    wanted = sorted({min(range(len(starts)), key=lambda k: abs(starts[k] - start))
                     for start, _ in sample_windows(duration, QUALITY_WINDOW_SECONDS)})
    return [(starts[k], min(QUALITY_WINDOW_SECONDS, segments[k].duration),
             [os.path.join(hls_dir, m.name, m.segments[k].uri) for m in measured]) for k in wanted]


def record_quality(services: Services, job: Job, probed: SourceInfo, measured: list[MeasuredRendition],
                   hls_dir: str) -> None:
    """Each rendition's VMAF (sampled) in the catalog; best effort: a score is never a reason to fail a video."""
    started = children_cpu()
    top = measured[0]
    try:
        scores = score_renditions(services.source_url(job, probed), probed, quality_windows(measured, hls_dir),
                                  top.width, top.height, top.frame_rate)
        services.catalog.record_quality(job.video_id, job.version, {
            m.name: (s.mean, s.p5) for m, s in zip(measured, scores, strict=True)})
    except Exception:
        log.exception("Could not measure the renditions' VMAF")
        return
    log.info("VMAF (sampled, %.1f CPU s): %s", children_cpu() - started,
             ", ".join(f"{m.name} {s.mean:.1f} (p5 {s.p5:.1f})" for m, s in zip(measured, scores, strict=True)))
