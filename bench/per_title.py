"""Per-title ladders judged by VMAF: the fixed ladder against the per-title one, in the same run. Prints, asserts
nothing.

Three generated 1080p sources (``vodflow.devtools.samples``): easy (a lecture: slides and a small moving picture),
camera-like (fine texture zooming, sensor grain) and animation-like (flat colours, sharp edges, fast shapes).
For each: the per-title probe (its CPU seconds), both ladders encoded by the pipeline's own encoder (every
rendition from one decode, as a work item does; CPU seconds), and every rendition's VMAF against the source
(upscaled bicubic to 1080p; every 3rd frame of the whole video, mean and 5th percentile). Then the probe's cost
on a 30 s 1080p source against that source's fixed-ladder encode (the budget: ≤ 10 %), and what recording the
sampled VMAF costs there, unchunked and in chunks.
Goals: easy ≥ 40 % fewer bytes with every rung ΔVMAF ≥ −1; hard: no rung lower (ΔVMAF ≥ −0.2), a starved rung
raised.

    .venv/bin/python bench/per_title.py [--duration 10] [--no-budget]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import children_cpu

from vodflow.devtools.samples import (
    SampleSpec,
    make_animation_sample,
    make_camera_sample,
    make_lecture_sample,
    make_sample,
)
from vodflow.media.encode.chunks import encode_chunk, plan_chunks
from vodflow.media.encode.ladder import Ladder, plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.media.quality.per_title import quality_ladder
from vodflow.media.quality.trials import probe_quality
from vodflow.media.quality.vmaf import ScoreWindow, VmafScore, pooled, rendition_frame_scores, score_renditions
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe
from vodflow.pipeline.ladder_decision import chunk_windows, quality_windows
from vodflow.pipeline.work import EncodePlan

SOURCES = (("easy (lecture)", make_lecture_sample), ("camera-like", make_camera_sample),
           ("animation-like", make_animation_sample))


def probe_file(path: Path) -> SourceInfo:
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


def encode(src: Path, source: SourceInfo, ladder: Ladder, out: Path) -> tuple[list[MeasuredRendition], float]:
    before = children_cpu()
    measured = encode_renditions(str(src), str(out), source, list(ladder.renditions), EncoderSettings())
    return measured, children_cpu() - before


def vmaf(src: Path, source: SourceInfo, ladder: Ladder, out: Path) -> dict[str, VmafScore]:
    top = ladder.renditions[0]
    whole = ScoreWindow(0.0, source.duration, tuple(str(out / r.name / "index.m3u8") for r in ladder.renditions))
    scores = score_renditions(str(src), source, [whole], top.width, top.height, top.fps, subsample=3)
    return {r.name: s for r, s in zip(ladder.renditions, scores, strict=True)}


def compare(label: str, src: Path, work: Path) -> None:
    source = probe_file(src)
    fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    before = children_cpu()
    trials = probe_quality(str(src), source, list(fixed.renditions), EncoderSettings())
    probe_cpu = children_cpu() - before
    per_title, choices = quality_ladder(fixed, trials)
    fixed_out, titled_out = work / "fixed", work / "per-title"
    fixed_measured, fixed_cpu = encode(src, source, fixed, fixed_out)
    titled_measured, titled_cpu = encode(src, source, per_title, titled_out)
    fixed_vmaf, titled_vmaf = vmaf(src, source, fixed, fixed_out), vmaf(src, source, per_title, titled_out)
    print(f"\n{label}: probe {probe_cpu:.2f} CPU s ({100 * probe_cpu / fixed_cpu:.1f} % of the fixed encode's "
          f"{fixed_cpu:.1f} CPU s; per-title encode {titled_cpu:.1f} CPU s)")
    print(f"  {'rung':6} {'fixed kbps':>10} {'VMAF':>6} {'p5':>6} {'per-title':>10} {'VMAF':>6} {'p5':>6} "
          f"{'ΔVMAF':>6} {'Δp5':>6}  choice (probe: VMAF at the fixed rate → expected)")
    deltas = []
    for choice in choices:
        f = fixed_vmaf[choice.name]
        t = titled_vmaf.get(choice.name)
        if t is None:
            print(f"  {choice.name:6} {choice.fixed_kbps:>10} {f.mean:>6.1f} {f.p5:>6.1f} {'dropped':>10}")
            continue
        deltas.append(t.mean - f.mean)
        print(f"  {choice.name:6} {choice.fixed_kbps:>10} {f.mean:>6.1f} {f.p5:>6.1f} {choice.kbps:>10} "
              f"{t.mean:>6.1f} {t.p5:>6.1f} {t.mean - f.mean:>+6.1f} {t.p5 - f.p5:>+6.1f}  {choice.reason} "
              f"(target {choice.target:g}; {choice.fixed_vmaf:.1f} → {choice.expected_vmaf:.1f})")
    fixed_bytes = sum(m.bytes for m in fixed_measured)
    titled_bytes = sum(m.bytes for m in titled_measured)
    print(f"  total bytes: fixed {fixed_bytes / 1e6:.2f} MB, per-title {titled_bytes / 1e6:.2f} MB "
          f"({100 * (1 - titled_bytes / fixed_bytes):.0f} % fewer); lowest ΔVMAF {min(deltas):+.2f}")


def budget(work: Path) -> None:
    """The probe on a 30 s 1080p source (the Speed benchmark's sample) against that source's fixed encode."""
    src = Path(make_sample(str(work / "speed.mp4"), SampleSpec(1920, 1080, 30.0, "30")))
    source = probe_file(src)
    fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    before = children_cpu()
    probe_quality(str(src), source, list(fixed.renditions), EncoderSettings())
    probe_cpu = children_cpu() - before
    measured, fixed_cpu = encode(src, source, fixed, work / "speed")
    print(f"\nbudget, 30 s 1080p30 sample: probe {probe_cpu:.2f} CPU s, fixed-ladder encode {fixed_cpu:.1f} CPU s: "
          f"{100 * probe_cpu / fixed_cpu:.1f} % (goal ≤ 10 %)")
    scoring(work, src, source, fixed, measured, fixed_cpu)


def scoring(work: Path, src: Path, source: SourceInfo, ladder: Ladder, measured: list[MeasuredRendition],
            encode_cpu: float) -> None:
    """What recording the quality costs, as the pipeline samples it: unchunked (the segments' windows, after the
    encode) and chunked in 12 s chunks (each chunk scoring the windows inside it from its pieces), and whether
    the two agree."""
    top = ladder.renditions[0]
    before = children_cpu()
    whole = score_renditions(str(src), source, quality_windows(measured, str(work / "speed")), top.width,
                             top.height, top.fps)
    whole_cpu = children_cpu() - before
    chunks = plan_chunks(source.duration, top.fps, 12.0)
    plan = EncodePlan(renditions=ladder.renditions, duration=source.duration, chunks=len(chunks),
                      pictures=plan_pictures(source.width, source.height, source.duration, top.fps))
    frames: list[list[float]] = [[] for _ in ladder.renditions]
    chunks_cpu = score_cpu = 0.0
    settings = EncoderSettings()
    for chunk in chunks:
        before = children_cpu()
        pieces = encode_chunk(str(src), str(work / f"chunk{chunk.index}"), source, chunk, list(ladder.renditions),
                              settings)
        chunks_cpu += children_cpu() - before
        before = children_cpu()
        windows = chunk_windows(source, plan, chunk, pieces, settings.segment_seconds)
        if windows:
            for found, scored in zip(frames, rendition_frame_scores(str(src), source, windows, top.width,
                                                                    top.height, top.fps), strict=True):
                found.extend(scored)
        score_cpu += children_cpu() - before
    chunked = [pooled(found) for found in frames]
    print(f"VMAF recorded, sampled: unchunked {whole_cpu:.2f} CPU s ({100 * whole_cpu / encode_cpu:.1f} % of its "
          f"encode); in {len(chunks)} chunks {score_cpu:.2f} CPU s ({100 * score_cpu / chunks_cpu:.1f} % of the "
          f"chunks' {chunks_cpu:.1f} CPU s)")
    print("  " + ", ".join(f"{r.name} {w.mean:.2f}/{c.mean:.2f}" for r, w, c in zip(ladder.renditions, whole,
                                                                                      chunked, strict=True))
          + " (unchunked/chunked)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-budget", action="store_true", help="skip the 30 s probe-cost measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-per-title-"))
    print(f"{args.duration:g} s 1920x1080 sources, default ladder, {os.cpu_count()} cores")
    try:
        for label, make in SOURCES:
            folder = work / label.split()[0]
            folder.mkdir()
            compare(label, Path(make(str(folder / "source.mp4"), 1920, 1080, args.duration)), folder)
            shutil.rmtree(folder, ignore_errors=True)
        if not args.no_budget:
            budget(work)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
