"""Encoder settings, measured: x264 preset, capped CRF vs target bitrate, threads per task. Prints, asserts nothing.

One rendition (720p of a 1080p source) encoded by the pipeline's own command, varying one thing at a time:
wall time, CPU time, bytes and SSIM against the source scaled the same way (ffmpeg's ssim filter).

    .venv/bin/python bench/encoder.py [--duration 20]
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
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import probe_file, wall_and_cpu

from vodflow.devtools.samples import SampleSpec, make_action_sample, make_lecture_sample, make_sample
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import build_encode_command
from vodflow.media.options import EncoderSettings


def ssim(src: Path, playlist: Path, width: int, height: int) -> float:
    """SSIM (All) of a rendition against the source scaled to the rendition's size with the same scaler."""
    graph = (f"[0:v]scale={width}:{height}:flags=lanczos,setsar=1,format=yuv420p[ref];"
             "[1:v]setsar=1,format=yuv420p[out];[out][ref]ssim")
    result = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(src), "-i", str(playlist),  # noqa: S603
                             "-filter_complex", graph, "-f", "null", "-"], capture_output=True, text=True, check=True)
    return float(re.findall(r"All:([0-9.]+)", result.stderr)[-1])


def with_crf(command: list[str], crf: int) -> list[str]:
    """The same command in capped-CRF mode: constant quality, the same maxrate/bufsize ceiling."""
    at = command.index("-b:v")
    return [*command[:at], "-crf", str(crf), *command[at + 2:]]


def encode(src: Path, out: Path, settings: EncoderSettings, crf: int | None = None) -> tuple[float, float, int, float]:
    source = probe_file(src)
    rendition = next(r for r in plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions
                     if r.name == "720p")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = build_encode_command(str(src), str(out), source, rendition, settings)
    wall, cpu = wall_and_cpu(with_crf(command, crf) if crf is not None else command)
    size = sum(p.stat().st_size for p in out.glob("*.ts"))
    return wall, cpu, size, ssim(src, out / "index.m3u8", rendition.width, rendition.height)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-encoder-"))
    try:
        camera = Path(make_sample(str(work / "camera.mp4"), SampleSpec(1920, 1080, args.duration, "30")))
        easy = Path(make_lecture_sample(str(work / "easy.mp4"), 1920, 1080, args.duration))
        hard = Path(make_action_sample(str(work / "hard.mp4"), 1920, 1080, args.duration))
        base = EncoderSettings()
        print(f"720p rendition (3000 kbps target) of {args.duration:g} s 1080p30 sources; {os.cpu_count()} cores\n")
        print("preset (camera-like source, target bitrate, 1 thread):")
        print(f"  {'preset':10} {'wall s':>7} {'CPU s':>7} {'MB':>6} {'SSIM':>7}")
        for preset in ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"):
            wall, cpu, size, quality = encode(camera, work / "out", replace(base, preset=preset, threads=1))
            print(f"  {preset:10} {wall:7.1f} {cpu:7.1f} {size / 1e6:6.2f} {quality:7.4f}")
        print("\nrate control (veryfast, 1 thread): target bitrate vs capped CRF (same maxrate/bufsize ceiling):")
        print(f"  {'source':8} {'mode':14} {'MB':>6} {'SSIM':>7}")
        for label, src in (("easy", easy), ("camera", camera), ("hard", hard)):
            for mode, crf in (("target 3000k", None), ("capped CRF 21", 21), ("capped CRF 18", 18)):
                _, _, size, quality = encode(src, work / "out", replace(base, threads=1), crf)
                print(f"  {label:8} {mode:14} {size / 1e6:6.2f} {quality:7.4f}")
        print("\nthreads per task (veryfast, camera-like source): two tasks at once on this machine's cores")
        for threads in (1, 2, 0):
            settings = replace(base, threads=threads)
            started = time.monotonic()
            source = probe_file(camera)
            rendition = next(r for r in plan_ladder(source.width, source.height, source.fps, True).renditions
                             if r.name == "720p")
            procs = []
            for i in range(2):
                out = work / f"par{i}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                procs.append(subprocess.Popen(build_encode_command(str(camera), str(out), source, rendition,  # noqa: S603
                                                                   settings), stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            assert all(p.wait() == 0 for p in procs)
            print(f"  threads={threads or 'auto':4}: both done in {time.monotonic() - started:6.1f} s")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
