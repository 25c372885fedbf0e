"""The per-title ladder decision, made on a ``transcode`` worker (the probe encodes; ``prepare`` runs on the
light ``default`` queue): the first thing an adaptive run's work item does, before it encodes.

An unchunked video is one work item, so it decides once. Every chunk of a chunked run decides for itself, from
the same windows of the same source with single-threaded, deterministic trial encodes, so all of them reach the
same ladder; each chunk's result carries the ladder it encoded and ``publish`` refuses chunks that disagree.
Only the first chunk writes the decision to the catalog.

The other codecs' renditions (AV1, HEVC) follow the decided H.264 ladder: the same rungs (a dropped rung is
dropped in every codec), each at the decided H.264 rate × the codec's ``rate_factor`` (measured at equal VMAF
in bench/codecs.py), so a rung the probe saved bits on is saved in every codec.

A per-title run's renditions are then scored, sampled, on the same worker: an unchunked one right after its
encode (``record_quality``), a chunked one by each chunk for the windows inside it (``score_chunk``), pooled by
``publish`` (``record_chunks_quality``). VMAF in the catalog, the API and the UI.
"""

from __future__ import annotations

import logging
import math
import os
import resource
from fractions import Fraction

from vodflow.catalog import RenditionPlan
from vodflow.media.encode.chunks import Chunk
from vodflow.media.encode.ladder import Ladder
from vodflow.media.measured import MeasuredRendition
from vodflow.media.package import hls
from vodflow.media.quality.per_title import quality_ladder
from vodflow.media.quality.trials import probe_quality, sample_windows
from vodflow.media.quality.vmaf import ScoreWindow, pooled, rendition_frame_scores, score_renditions
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.work import ChunkResult

log = logging.getLogger(__name__)
QUALITY_WINDOW_SECONDS = 2.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def decided_plan(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan, src: str,
                 record: bool) -> EncodePlan:
    """The plan with the per-title ladder, probed from ``src`` (an adaptive run's; ``transcode.decide_ladder``);
    ``record``: write the rungs and the decision (``ladder_decided``, with what each rung measured) to the
    catalog."""
    started = children_cpu()
    trials = probe_quality(src, probed, list(plan.renditions), services.settings.encoder)
    ladder, choices = quality_ladder(Ladder(version=0, renditions=plan.renditions), trials,
                                     services.settings.quality)
    cpu = round(children_cpu() - started, 2)
    log.info("Per-title ladder (probe %.1f CPU s): %s", cpu,
             ", ".join(f"{c.name} {c.fixed_kbps}→{c.kbps}k ({c.reason})" for c in choices))
    decided = plan.with_ladder(ladder.renditions)  # the other codecs' rungs follow the decided ladder
    if record:
        services.catalog.plan_renditions(job.video_id, job.run_id, job.version, [
            RenditionPlan(r.name, r.width, r.height, r.video_kbps, r.audio_kbps,
                          round(hls.frame_rate_value(r.fps), 3), codec=r.codec, dynamic_range=r.dynamic_range)
            for r in (*decided.renditions, *decided.cmaf_renditions)])
        services.catalog.add_event(job.video_id, "ladder_decided", probe_cpu_seconds=cpu,
                                   rungs=[c.to_dict() for c in choices],
                                   trials=[t.to_dict() for t in trials.values()])
    return decided


def nearest_segments(starts: list[float], duration: float) -> list[int]:
    """The segments (by index, from their start times) nearest the sample windows at 20/50/80 % of the video."""
    return sorted({min(range(len(starts)), key=lambda k: abs(starts[k] - start))
                   for start, _ in sample_windows(duration, QUALITY_WINDOW_SECONDS)})


def quality_windows(measured: list[MeasuredRendition], hls_dir: str) -> list[ScoreWindow]:
    """Where an unchunked video's renditions are scored: 2 s from the start of the segments nearest 20/50/80 % of
    the video, read from the segment files themselves (a rendition's segment starts with an IDR frame at the same
    instant in every rendition: nothing is decoded only to be skipped, as seeking in the playlist would)."""
    segments = measured[0].segments
    starts = [sum(s.duration for s in segments[:k]) for k in range(len(segments))]
    wanted = nearest_segments(starts, starts[-1] + segments[-1].duration)
    return [ScoreWindow(starts[k], min(QUALITY_WINDOW_SECONDS, segments[k].duration),
                        tuple(os.path.join(hls_dir, m.name, m.segments[k].uri) for m in measured)) for k in wanted]


def chunk_windows(probed: SourceInfo, plan: EncodePlan, chunk: Chunk, pieces: dict[str, str],
                  segment_seconds: int) -> list[ScoreWindow]:
    """The same windows for a chunked run (segment starts nearest 20/50/80 %, counted in output frames as the
    chunks are), those in this ``chunk``: each is read from the chunk's pieces, from its place in them."""
    rate = Fraction(plan.renditions[0].fps)
    count = max(1, math.ceil(probed.duration / segment_seconds))
    files = tuple(pieces[r.name] for r in plan.renditions)
    windows = []
    for k in nearest_segments([k * segment_seconds for k in range(count)], probed.duration):
        first = math.ceil(k * segment_seconds * rate)  # a segment's first frame: an IDR in every rendition
        inside = first - chunk.first_frame
        length = min(QUALITY_WINDOW_SECONDS, probed.duration - float(first / rate))
        if inside >= 0 and (chunk.frames is None or inside < chunk.frames) and length > 0:
            windows.append(ScoreWindow(float(first / rate), length, files, offset=float(inside / rate)))
    return windows


def score_chunk(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan, chunk: Chunk,
                pieces: dict[str, str]) -> dict[str, list[float]]:
    """A per-title chunk's share of the sampled VMAF (the windows that fall in it), scored here on the
    ``transcode`` worker while its pieces are on disk; ``publish`` pools every chunk's. Best effort."""
    windows = chunk_windows(probed, plan, chunk, pieces, services.settings.encoder.segment_seconds)
    if not windows:
        return {}
    top, started = plan.renditions[0], children_cpu()
    try:
        frames = rendition_frame_scores(services.source_url(job, probed), probed, windows, top.width, top.height,
                                        top.fps)
    except Exception:
        log.exception("Could not measure this chunk's VMAF")
        return {}
    log.info("VMAF of %d window(s) in %s (%.1f CPU s)", len(windows), chunk.label, children_cpu() - started)
    return {r.name: found for r, found in zip(plan.renditions, frames, strict=True)}


def record_chunks_quality(services: Services, job: Job, results: list[ChunkResult]) -> None:
    """A chunked per-title run's VMAF, pooled over the frames every chunk scored; best effort."""
    frames: dict[str, list[float]] = {}
    for result in sorted(results, key=lambda r: r.index):
        for name, found in result.vmaf_frames.items():
            frames.setdefault(name, []).extend(found)
    if not frames:
        return
    try:
        services.catalog.record_quality(job.video_id, job.version, {
            name: (score.mean, score.p5) for name, found in frames.items() for score in [pooled(found)]})
    except Exception:
        log.exception("Could not record the renditions' VMAF")


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
