"""The per-title ladder decision, made on a ``transcode`` worker (the probe encodes; ``prepare`` runs on the
light ``default`` queue): the first thing an adaptive run's work item does, before it encodes.

An unchunked video is one work item, so it decides once. Every chunk of a chunked run decides for itself, from
the same windows of the same source with single-threaded, deterministic trial encodes, so all of them reach the
same ladder; each chunk's result carries the ladder it encoded and ``publish`` refuses chunks that disagree.
Only the first chunk writes the decision to the catalog.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import replace

from vodflow.catalog import RenditionPlan
from vodflow.media import hls
from vodflow.media.ladder import Ladder
from vodflow.media.probe import SourceInfo
from vodflow.media.quality_ladder import quality_ladder
from vodflow.media.quality_probe import probe_quality
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.work import EncodePlan

log = logging.getLogger(__name__)


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
