"""The measuring kit of ``bench/codecs.py``: clips, whole ladders encoded from one decode with any codec, VMAF of
every rung against the source, keyframe and peak-rate checks. Prints nothing.

Every encode here is one ffmpeg that decodes the clip once, puts it on the output frame grid, splits it and scales
each rung as the pipeline does (``media.encode.ffmpeg``), and writes each rung to an MP4 without audio; CPU is
user + system of that child (``benchstack.wall_and_cpu``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import wall_and_cpu

from vodflow.media.encode.codecs import modern_ffmpeg
from vodflow.media.encode.ffmpeg import output_grid, scaled, video_codec_options
from vodflow.media.encode.ladder import BUFSIZE_FACTOR, MAXRATE_FACTOR, MIN_VIDEO_KBPS, Rendition, plan_ladder
from vodflow.media.options import EncoderSettings
from vodflow.media.quality.vmaf import Distorted, VmafScore, pooled, sampled_pairs, score_frames

KEYFRAME_SECONDS = EncoderSettings().keyframe_seconds


@dataclass(frozen=True)
class Clip:
    name: str
    path: str
    width: int
    height: int
    fps: str
    duration: float

    @property
    def rungs(self) -> tuple[Rendition, ...]:
        """The pipeline's fixed ladder for this clip (no audio: only the picture is compared)."""
        return plan_ladder(self.width, self.height, self.fps, False).renditions


@dataclass(frozen=True)
class Encoder:
    """A codec and how it is driven: ``mode`` "vbr" (``-b:v`` at the rung's rate, the H.264 ladder's maxrate and
    bufsize where the encoder takes them) or "crf" (capped CRF: ``crf`` with the rung's maxrate and bufsize)."""

    codec: str  # h264, av1, hevc
    preset: str
    mode: str = "vbr"

    @property
    def label(self) -> str:
        name = {"h264": "x264", "av1": "SVT-AV1", "hevc": "x265"}[self.codec]
        return f"{name} {self.preset}" + (" capped-CRF" if self.mode == "crf" else "")


@dataclass(frozen=True)
class Job:
    """One output of a ladder encode: a rung (its size and rate) in one encoder's settings."""

    encoder: Encoder
    rendition: Rendition
    path: str
    crf: int | None = None  # capped CRF mode only


def at_rate(rendition: Rendition, kbps: int) -> Rendition:
    """The rung at another bitrate, maxrate and bufsize in the ladder's proportions (as ``codec_ladder``)."""
    kbps = max(MIN_VIDEO_KBPS, int(kbps))
    return replace(rendition, video_kbps=kbps, maxrate_kbps=int(kbps * MAXRATE_FACTOR),
                   bufsize_kbits=int(kbps * BUFSIZE_FACTOR))


def keyframe_gop(rendition: Rendition) -> int:
    """As x264's: twice the forced period, so the encoder never adds a keyframe of its own between forced ones."""
    return 2 * math.ceil(float(Fraction(rendition.fps)) * KEYFRAME_SECONDS)


def codec_options(job: Job) -> dict[str, object]:
    """The encoder's options for one rung; keyframes forced every 2 s with the pipeline's expression."""
    r, enc = job.rendition, job.encoder
    if enc.codec == "h264":
        options = video_codec_options(r, EncoderSettings(preset=enc.preset))
        if enc.mode == "crf":
            options.pop("b:v")
            options["crf"] = job.crf
        return options
    keyframes = f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"
    if enc.codec == "av1":
        # SVT-AV1 4.x refuses a max bitrate in VBR mode ("Max Bitrate only supported with CRF mode"): VBR gets
        # the rate and the buffer only; capped CRF gets the ladder's maxrate.
        options = {"c:v": "libsvtav1", "preset": int(enc.preset), "bufsize": f"{r.bufsize_kbits}k",
                   "g": keyframe_gop(r), "force_key_frames": keyframes, "svtav1-params": "scd=0"}
        if enc.mode == "crf":
            options.update({"crf": job.crf, "maxrate": f"{r.maxrate_kbps}k"})
        else:
            options["b:v"] = f"{r.video_kbps}k"
        return options
    options = {"c:v": "libx265", "preset": enc.preset, "maxrate": f"{r.maxrate_kbps}k",
               "bufsize": f"{r.bufsize_kbits}k", "force_key_frames": keyframes, "forced-idr": 1, "tag:v": "hvc1",
               "x265-params": f"keyint={keyframe_gop(r)}:min-keyint=1:scenecut=0:open-gop=0:log-level=error"}
    if enc.mode == "crf":
        options["crf"] = job.crf
    else:
        options["b:v"] = f"{r.video_kbps}k"
    return options


def ladder_command(clip: Clip, jobs: list[Job], binary: str) -> list[str]:
    """One decode, every job's rung scaled from it and encoded; an empty ``jobs`` list of encoders is never
    built (see ``decode_command``)."""
    picture = output_grid(ffmpeg.input(clip.path)["v:0"], clip.fps)
    split = picture.filter_multi_output("split", len(jobs))
    outputs = [scaled(split.stream(i), job.rendition).output(job.path, **codec_options(job))
               for i, job in enumerate(jobs)]
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-y", "-loglevel", "error"
                                                      ).compile(cmd=binary)


def decode_command(clip: Clip, rungs: tuple[Rendition, ...], binary: str) -> list[str]:
    """What every ladder command costs besides its encoders: the decode, the frame grid, the split, the scaling."""
    picture = output_grid(ffmpeg.input(clip.path)["v:0"], clip.fps)
    split = picture.filter_multi_output("split", len(rungs))
    outputs = [scaled(split.stream(i), r).output("-", f="null") for i, r in enumerate(rungs)]
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-loglevel", "error"
                                                      ).compile(cmd=binary)


def binary_for(jobs: list[Job], system_h264: bool = False) -> str:
    return "ffmpeg" if system_h264 and all(j.encoder.codec == "h264" for j in jobs) else modern_ffmpeg()


def run_ladder(clip: Clip, jobs: list[Job], system_h264: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one ladder encode."""
    for job in jobs:
        Path(job.path).unlink(missing_ok=True)
    return wall_and_cpu(ladder_command(clip, jobs, binary_for(jobs, system_h264)))


def vmaf(clip: Clip, files: list[str], every: int = 4) -> list[VmafScore]:
    """Each file's VMAF against the clip (on the same frame grid), every ``every``-th frame scored (with its true
    predecessor, ``sampled_pairs``), each picture upscaled bicubic to the clip's size; one reference decode."""
    reference = sampled_pairs(output_grid(ffmpeg.input(clip.path)["v:0"], clip.fps), every)
    distorted = [Distorted(path, (("select", every),)) for path in files]
    frames = score_frames(reference, distorted, clip.width, clip.height, subsample=2, timeout=3600)
    return [pooled(found) for found in frames]


def packets(path: str) -> list[tuple[float, int, bool]]:
    """(pts seconds, bytes, keyframe) of every video packet, in presentation order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",  # noqa: S603
                          "packet=pts_time,size,flags", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        pts, size, flags = line.split(",")[:3]
        rows.append((float(pts), int(size), "K" in flags))
    return sorted(rows)


def keyframe_check(path: str, duration: float) -> str:
    """"ok" when the keyframes are exactly the forced ones (every 2 s from 0), else what differs."""
    times = [round(t, 3) for t, _, key in packets(path) if key]
    expected = [float(k * KEYFRAME_SECONDS) for k in range(math.ceil(duration / KEYFRAME_SECONDS - 1e-6))]
    extra = [t for t in times if not any(abs(t - e) < 0.02 for e in expected)]
    missing = [e for e in expected if not any(abs(t - e) < 0.02 for t in times)]
    if not extra and not missing:
        return "ok"
    return f"extra {extra[:4]} missing {missing[:4]}"


def peak_ratio(path: str, window: float = float(KEYFRAME_SECONDS)) -> float:
    """The highest bitrate over any keyframe-period window (a segment's worth) against the average."""
    rows = packets(path)
    total = sum(size for _, size, _ in rows)
    end = rows[-1][0] + 1e-3
    buckets = [0] * max(1, math.ceil(end / window))
    for t, size, _ in rows:
        buckets[min(len(buckets) - 1, int(t // window))] += size
    full = buckets[:-1] if len(buckets) > 1 and end % window > 1e-3 else buckets
    return max(full) / window / (total / end)


def kbps_of(path: str, duration: float) -> float:
    return os.path.getsize(path) * 8 / duration / 1000


def make_looped(src: str, path: str, duration: float) -> str:
    """A real clip repeated to ``duration`` at its own size and rate, as a near-lossless H.264 source."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-stream_loop", "-1",  # noqa: S603
                    "-i", src, "-t", f"{duration}", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "12",
                    "-pix_fmt", "yuv420p", path], check=True)
    return path


def clip_of(name: str, path: str) -> Clip:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",  # noqa: S603
                          "stream=width,height,avg_frame_rate:format=duration", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout

    info = json.loads(out)
    stream = info["streams"][0]
    return Clip(name, path, int(stream["width"]), int(stream["height"]), stream["avg_frame_rate"],
                float(info["format"]["duration"]))
