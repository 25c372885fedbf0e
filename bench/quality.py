"""Quality per byte: the per-title (adaptive) ladder against the fixed ladder. Prints, asserts nothing.

On an easy source (slides with text and a small moving picture, as a lecture) and a hard one (full-frame
motion with heavy grain), every rendition is encoded with the pipeline's own encoder twice — fixed ladder,
adaptive ladder — and compared with the source scaled to the rendition's size by ffmpeg's ssim filter.
Goal: ≥ 30 % fewer bytes on the easy source with SSIM no lower; on the hard source SSIM no lower.

    .venv/bin/python bench/quality.py [--duration 20] [--height 1080] [--crf 18]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vodflow.devtools.samples import make_action_sample, make_lecture_sample
from vodflow.media.complexity import measure_complexity
from vodflow.media.encode import encode_rendition
from vodflow.media.ffmpeg import FILE_PROTOCOLS, EncoderSettings
from vodflow.media.ladder import Ladder, adapt_ladder, plan_ladder
from vodflow.media.probe import SourceInfo, probe
from vodflow.settings import Settings


def probe_file(path: Path) -> SourceInfo:
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


def ssim(src: Path, playlist: Path, width: int, height: int) -> float:
    """SSIM (All) of a rendition against the source scaled to the rendition's size with the same scaler."""
    graph = (f"[0:v]scale={width}:{height}:flags=lanczos,setsar=1,format=yuv420p[ref];"
             "[1:v]setsar=1,format=yuv420p[out];[out][ref]ssim")
    result = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(src), "-i", str(playlist),  # noqa: S603
                             "-filter_complex", graph, "-f", "null", "-"], capture_output=True, text=True, check=True)
    return float(re.findall(r"All:([0-9.]+)", result.stderr)[-1])


def encode_ladder(src: Path, source: SourceInfo, ladder: Ladder, out: Path) -> list[tuple[str, int, int, float]]:
    """(rendition, target kbps, bytes, SSIM) per rendition, encoded by the pipeline's encoder."""
    rows = []
    for rendition in ladder.renditions:
        folder = out / rendition.name
        measured = encode_rendition(str(src), str(folder), source, rendition, EncoderSettings())
        rows.append((rendition.name, rendition.video_kbps, measured.bytes,
                     ssim(src, folder / "index.m3u8", rendition.width, rendition.height)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--crf", type=int, default=Settings().adaptive_crf, help="the complexity probe's quality")
    args = parser.parse_args()
    width = args.height * 16 // 9 // 2 * 2
    work = Path(tempfile.mkdtemp(prefix="vodflow-quality-"))
    print(f"{args.duration:g} s {width}x{args.height} sources, default ladder, {os.cpu_count()} cores")
    try:
        for label, make in (("easy (lecture)", make_lecture_sample), ("hard (grain, motion)", make_action_sample)):
            src = Path(make(str(work / f"{label.split()[0]}.mp4"), width, args.height, args.duration))
            source = probe_file(src)
            fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
            started = time.monotonic()
            complexity = measure_complexity(str(src), source, list(fixed.renditions), crf=args.crf)
            probe_seconds = time.monotonic() - started
            adaptive = adapt_ladder(fixed, complexity.kbps)
            rows_fixed = encode_ladder(src, source, fixed, work / "fixed" / label.split()[0])
            rows_adaptive = encode_ladder(src, source, adaptive, work / "adaptive" / label.split()[0])
            print(f"\n{label}: complexity probe {probe_seconds:.1f} s "
                  f"(CRF {complexity.crf}, {complexity.seconds_sampled:g} s sampled)")
            print(f"  {'rung':6} {'fixed kbps':>10} {'SSIM':>8} {'adaptive kbps':>14} {'SSIM':>8} {'ΔSSIM':>8}")
            for (name, kf, _, sf), (_, ka, _, sa) in zip(rows_fixed, rows_adaptive, strict=True):
                print(f"  {name:6} {kf:>10} {sf:>8.4f} {ka:>14} {sa:>8.4f} {sa - sf:>+8.4f}")
            bytes_fixed = sum(r[2] for r in rows_fixed)
            bytes_adaptive = sum(r[2] for r in rows_adaptive)
            print(f"  total bytes: fixed {bytes_fixed / 1e6:.2f} MB, adaptive {bytes_adaptive / 1e6:.2f} MB "
                  f"({100 * (1 - bytes_adaptive / bytes_fixed):.0f} % fewer); "
                  f"lowest ΔSSIM {min(a[3] - f[3] for f, a in zip(rows_fixed, rows_adaptive, strict=True)):+.4f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
