"""Per-title ladders judged by VMAF: the fixed ladder against the per-title one, in the same run. Prints, asserts
nothing.

Four generated sources (``vodflow.devtools.samples``; no Big Buck Bunny on the machine): easy (a 1080p lecture:
slides and a small moving picture), hard (a 720p testsrc2 with noise, in Big Buck Bunny's place), small (a
640x272 testsrc2 with noise: one rung, the top) and starved (720p under heavy grain: below every target). For
each: the per-title probe (CPU and wall seconds), both ladders encoded by the pipeline's own encoder (every
rendition from one decode, as a work item does), and every rendition's VMAF against the source (upscaled bicubic
to the source's size; every 3rd frame of the whole video, mean and 5th percentile), beside the VMAF the probe
predicted for it (``pred``), at the fixed rate and at the chosen one. Then the probe's cost on a 30 s 1080p
source against that source's fixed-ladder encode, and what recording the sampled VMAF costs there, unchunked and
in chunks (``--no-budget`` skips both).
Goals (issue 24): easy ≥ 40 % fewer bytes with every rung ΔVMAF ≥ −1; no rung whose fixed encode is above its
target gets more bits; a rung below its target reaches it or the ceiling (or, where a doubling of the rate buys
less than ``vmaf_min_gain``, keeps the fixed rate).

    .venv/bin/python bench/per_title.py [--duration 10] [--no-budget] [--only starved]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import children_cpu, probe_file

from vodflow.devtools.samples import SampleSpec, make_action_sample, make_lecture_sample, make_sample
from vodflow.media.encode.chunks import encode_chunk, plan_chunks
from vodflow.media.encode.ladder import Ladder, plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings, QualityPolicy
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.media.quality.per_title import quality_ladder
from vodflow.media.quality.trials import probe_quality
from vodflow.media.quality.vmaf import ScoreWindow, VmafScore, pooled, rendition_frame_scores, score_renditions
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.ladder_decision import chunk_windows, quality_windows
from vodflow.pipeline.work import EncodePlan

Maker = Callable[[str, float], str]
SOURCES: tuple[tuple[str, Maker], ...] = (
    ("easy (lecture, 1920x1080)", lambda path, seconds: make_lecture_sample(path, 1920, 1080, seconds)),
    ("hard (testsrc2+noise, 1280x720)", lambda path, seconds: make_sample(path, SampleSpec(1280, 720, seconds))),
    ("small (testsrc2+noise, 640x272, 24 fps)",
     lambda path, seconds: make_sample(path, SampleSpec(640, 272, seconds, "24"))),
    ("starved (testsrc2+heavy grain, 1280x720)", lambda path, seconds: make_action_sample(path, 1280, 720, seconds)),
)


class Meter:
    """CPU (the bench's children: ffmpeg) and wall seconds of a stretch of work."""

    def __init__(self) -> None:
        self.cpu, self.wall = children_cpu(), time.monotonic()

    def done(self) -> tuple[float, float]:
        return children_cpu() - self.cpu, time.monotonic() - self.wall


def encode(src: Path, source: SourceInfo, ladder: Ladder, out: Path) -> tuple[list[MeasuredRendition], float]:
    meter = Meter()
    measured = encode_renditions(str(src), str(out), source, list(ladder.renditions), EncoderSettings())
    return measured, meter.done()[0]


def vmaf(src: Path, source: SourceInfo, ladder: Ladder, out: Path) -> dict[str, VmafScore]:
    top = ladder.renditions[0]
    whole = ScoreWindow(0.0, source.duration, tuple(str(out / r.name / "index.m3u8") for r in ladder.renditions))
    scores = score_renditions(str(src), source, [whole], top.width, top.height, top.fps, subsample=3)
    return {r.name: s for r, s in zip(ladder.renditions, scores, strict=True)}


def compare(label: str, src: Path, work: Path) -> None:
    source = probe_file(src)
    fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    meter = Meter()
    trials = probe_quality(str(src), source, list(fixed.renditions), EncoderSettings())
    probe_cpu, probe_wall = meter.done()
    policy = QualityPolicy()
    per_title, choices = quality_ladder(fixed, trials, policy)
    fixed_out, titled_out = work / "fixed", work / "per-title"
    fixed_measured, fixed_cpu = encode(src, source, fixed, fixed_out)
    titled_measured, titled_cpu = encode(src, source, per_title, titled_out)
    meter = Meter()
    fixed_vmaf, titled_vmaf = vmaf(src, source, fixed, fixed_out), vmaf(src, source, per_title, titled_out)
    score_cpu, _ = meter.done()
    fixed_bytes = {m.name: m.bytes for m in fixed_measured}
    titled_bytes = {m.name: m.bytes for m in titled_measured}
    print(f"\n{label}, {source.duration:g} s: probe {probe_cpu:.1f} CPU s / {probe_wall:.1f} s wall "
          f"({100 * probe_cpu / fixed_cpu:.0f} % of the fixed encode's {fixed_cpu:.1f} CPU s); per-title encode "
          f"{titled_cpu:.1f} CPU s; scoring both {score_cpu:.1f} CPU s")
    print(f"  {'rung':5} {'target':>6} | {'fixed kbps':>10} {'bytes':>9} {'VMAF':>5} {'pred':>5} | {'kbps':>5} "
          f"{'bytes':>9} {'VMAF':>5} {'pred':>5} {'ΔVMAF':>6} {'Δp5':>5} | choice")
    deltas, errors, broken = [], [], []
    for choice in choices:
        f = fixed_vmaf[choice.name]
        errors.append(choice.fixed_vmaf - f.mean)
        left = (f"  {choice.name:5} {choice.target:>6g} | {choice.fixed_kbps:>10} {fixed_bytes[choice.name]:>9} "
                f"{f.mean:>5.1f} {choice.fixed_vmaf:>5.1f} |")
        t = titled_vmaf.get(choice.name)
        if t is None:
            print(f"{left} {'dropped':>5}")
            continue
        deltas.append(t.mean - f.mean)
        errors.append(choice.expected_vmaf - t.mean)
        print(f"{left} {choice.kbps:>5} {titled_bytes[choice.name]:>9} {t.mean:>5.1f} {choice.expected_vmaf:>5.1f} "
              f"{t.mean - f.mean:>+6.1f} {t.p5 - f.p5:>+5.1f} | {choice.reason}")
        if f.mean >= choice.target and titled_bytes[choice.name] > fixed_bytes[choice.name]:
            broken.append(f"{choice.name} above its target got more bytes")
        if f.mean < choice.target and t.mean < choice.target and choice.kbps < choice.fixed_kbps * policy.ceiling \
                and choice.reason not in ("flat", "diminishing"):
            broken.append(f"{choice.name} below its target reached neither it nor the ceiling")
    total_fixed, total_titled = sum(fixed_bytes.values()), sum(titled_bytes.values())
    print(f"  total bytes: fixed {total_fixed / 1e6:.2f} MB, per-title {total_titled / 1e6:.2f} MB "
          f"({100 * (1 - total_titled / total_fixed):.0f} % fewer); lowest ΔVMAF {min(deltas):+.2f}")
    print(f"  probe's prediction − published VMAF: mean {sum(errors) / len(errors):+.2f}, "
          f"|max| {max(abs(e) for e in errors):.2f} over {len(errors)} renditions")
    print("  rules: " + ("; ".join(broken) if broken else "hold (above target → fewer bytes; below → reached, "
                                                          "ceiling, or not worth it)"))


def budget(work: Path) -> None:
    """The probe on a 30 s 1080p source (the Speed benchmark's sample) against that source's fixed encode."""
    src = Path(make_sample(str(work / "speed.mp4"), SampleSpec(1920, 1080, 30.0, "30")))
    source = probe_file(src)
    fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    meter = Meter()
    probe_quality(str(src), source, list(fixed.renditions), EncoderSettings())
    probe_cpu, probe_wall = meter.done()
    measured, fixed_cpu = encode(src, source, fixed, work / "speed")
    print(f"\nbudget, 30 s 1080p30 sample: probe {probe_cpu:.2f} CPU s ({probe_wall:.1f} s wall), fixed-ladder "
          f"encode {fixed_cpu:.1f} CPU s: "
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
    parser.add_argument("--only", default="", help="only the sources whose label contains this (e.g. starved)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-per-title-"))
    print(f"{args.duration:g} s sources, default ladder, {os.cpu_count()} cores")
    try:
        for label, make in (source for source in SOURCES if args.only in source[0]):
            folder = work / label.split()[0]
            folder.mkdir()
            compare(label, Path(make(str(folder / "source.mp4"), args.duration)), folder)
            shutil.rmtree(folder, ignore_errors=True)
        if not args.no_budget:
            budget(work)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
