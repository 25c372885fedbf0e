"""WebM downloads, measured: what the ``webm`` output costs and gives for the top rung of a 720p source — CPU
(ffmpeg's, which a busy machine cannot distort), bytes, the rate it hit against the one asked for, and VMAF against
the source — for SVT-AV1 at the chosen preset and its two neighbours, VP9 (libvpx, the same bits) for comparison,
and the H.264 rendition it is made from. Prints, asserts nothing.

    .venv/bin/python bench/webm.py [--duration 10] [--height 720]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode.codecs import codec_ladder, modern_ffmpeg
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.package import webm
from vodflow.media.source.probe import probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    width = args.height * 16 // 9
    with tempfile.TemporaryDirectory() as tmp:
        src = make_sample(os.path.join(tmp, "src.mp4"), SampleSpec(width, args.height, args.duration, "30"))
        info = probe(src, os.path.getsize(src), Path(src).read_bytes()[:4096], protocols="file")
        top = plan_ladder(info.width, info.height, info.fps, info.has_audio, "default").renditions[0]
        cpu = _children_cpu()
        [measured] = encode_renditions(src, os.path.join(tmp, "hls"), info, [top], EncoderSettings())
        h264_cpu = _children_cpu() - cpu
        segments = [os.path.join(tmp, "hls", top.name, s.uri) for s in measured.segments]
        av1_kbps = codec_ladder((top,), "av1")[0].video_kbps
        print(f"{args.duration:g} s {width}x{args.height} testsrc2+noise; rung {top.name}: H.264 {top.video_kbps} kbps "
              f"+ AAC {top.audio_kbps}; AV1 asks {av1_kbps} kbps + Opus {webm.opus_kbps(top.audio_kbps)}")
        rows = [("H.264 rendition (x264 veryfast)", h264_cpu, measured.bytes, segments[0], "mpegts", segments)]
        for preset in (webm.AV1_PRESET - 1, webm.AV1_PRESET, webm.AV1_PRESET + 1):
            out = os.path.join(tmp, f"av1-{preset}.webm")
            webm.AV1_PRESET = preset
            cpu = _children_cpu()
            webm.make_webm(segments, out, measured.duration, audio_kbps=top.audio_kbps,
                           picture=webm.WebmPicture(top.width, top.height, top.fps, av1_kbps))
            rows.append((f"WebM AV1 preset {preset}", _children_cpu() - cpu, os.path.getsize(out), out, "webm", None))
        out = os.path.join(tmp, "vp9.webm")
        cpu = _children_cpu()
        subprocess.run([modern_ffmpeg(), "-v", "error", "-y", "-protocol_whitelist", "concat,file", "-f", "mpegts",  # noqa: S603
                        "-i", "concat:" + "|".join(segments), "-c:v", "libvpx-vp9", "-b:v", f"{av1_kbps}k",
                        "-deadline", "good", "-cpu-used", "5", "-row-mt", "1", "-g", "60", "-c:a", "libopus",
                        "-b:a", f"{webm.opus_kbps(top.audio_kbps)}k", "-f", "webm", out], check=True)
        rows.append(("WebM VP9 (libvpx good, cpu-used 5)", _children_cpu() - cpu, os.path.getsize(out), out, "webm",
                     None))
        print(f"{'':36} {'CPU s':>6} {'MB':>6} {'kbps':>6} {'VMAF':>6}")
        for label, seconds, size, path, fmt, concat in rows:
            distorted = "concat:" + "|".join(concat) if concat else path
            kbps = size * 8 / measured.duration / 1000
            print(f"{label:36} {seconds:6.2f} {size / 1e6:6.3f} {kbps:6.0f} {vmaf(distorted, fmt, src, tmp):6.2f}")


def vmaf(distorted: str, fmt: str, reference: str, tmp: str) -> float:
    """Mean VMAF of a file's picture against the source's, frame by frame from the first."""
    log = os.path.join(tmp, "vmaf.json")
    subprocess.run([modern_ffmpeg(), "-v", "error", "-protocol_whitelist", "concat,file", "-f", fmt,  # noqa: S603
                    "-i", distorted, "-i", reference, "-lavfi",
                    # Frame n against frame n (WebM's millisecond timestamps would pair frames off by one).
                    "[0:v]settb=1/1000000,setpts=N/FRAME_RATE/TB[d];[1:v]settb=1/1000000,setpts=N/FRAME_RATE/TB[r];"
                    f"[d][r]libvmaf=log_fmt=json:log_path={log}:n_threads=2", "-f", "null", "-"], check=True)
    return json.loads(Path(log).read_text())["pooled_metrics"]["vmaf"]["mean"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s wall)")
