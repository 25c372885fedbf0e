"""VMAF: how good an encode looks, as Netflix measures it (libvmaf, model vmaf_v0.6.1).

Debian's ffmpeg has no libvmaf, so scoring runs the static ffmpeg that the ``imageio-ffmpeg`` wheel ships
(``vmaf_ffmpeg``); encoding stays with the system's ffmpeg (docs/speed.md#long-videos-and-per-title-ladders:
same x264 speed, and the wheel has no ffprobe). Each distorted picture is upscaled bicubic to the reference's size,
as VMAF is meant to be read (a 360p rung is judged as it looks on the 1080p screen), and scored against it.

Sampling keeps it cheap: only a few windows of the video are decoded and compared, and libvmaf's
``n_subsample`` scores every Nth frame of them (its motion feature still sees every frame, so a scored frame gets
the score a full run gives it). Commands are argument lists built with
ffmpeg-python; no Airflow, S3 or database.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode.process import run_ffmpeg

MODEL = "version=vmaf_v0.6.1"


@dataclass(frozen=True)
class VmafScore:
    """A pooled score: the mean over the scored frames and their 5th percentile (the worst moments)."""

    mean: float
    p5: float
    frames: int  # how many frames were scored


@dataclass(frozen=True)
class Distorted:
    """One picture to score: a file (an HLS playlist, a raw .264 trial) and the input options it needs."""

    path: str
    # Input options (a raw stream's format, a window's seek); ("select", N): only ``sampled_pairs(N)`` of it;
    # ("frames", N): only its first N frames; ("prescale", (w, h)): scaled (lanczos, as a rung is) to w x h first.
    options: tuple[tuple[str, object], ...] = ()


@lru_cache(maxsize=1)
def vmaf_ffmpeg() -> str:
    """The ffmpeg with libvmaf: the static build in the ``imageio-ffmpeg`` wheel (pinned in constraints.txt)."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a runtime requirement
        raise MediaToolError("VMAF needs the imageio-ffmpeg package (requirements.txt)") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pooled(frame_scores: list[float]) -> VmafScore:
    return VmafScore(mean=round(sum(frame_scores) / len(frame_scores), 2),
                     p5=round(percentile(frame_scores, 0.05), 2), frames=len(frame_scores))


def read_log(path: str) -> list[float]:
    """The per-frame scores of a libvmaf JSON log."""
    with open(path, encoding="utf-8") as log:
        frames = json.load(log)["frames"]
    scores = [float(frame["metrics"]["vmaf"]) for frame in frames]
    if not scores:
        raise MediaToolError(f"libvmaf scored no frame ({path})")
    return scores


def score_command(reference: ffmpeg.nodes.FilterableStream, distorted: list[Distorted], width: int, height: int,
                  logs: list[str], subsample: int = 1, threads: int = 1) -> list[str]:
    """One ffmpeg: the reference (already the picture to compare against, ``width`` x ``height``) decoded once
    and compared with every distorted file, each upscaled bicubic to that size."""
    references = reference.filter("setsar", 1).filter("format", "yuv420p").filter_multi_output(
        "split", len(distorted))
    outputs = []
    for i, (item, log_path) in enumerate(zip(distorted, logs, strict=True)):
        options = dict(item.options)
        every = int(options.pop("select", 0))  # type: ignore[call-overload]
        frames = int(options.pop("frames", 0))  # type: ignore[call-overload]
        prescale = options.pop("prescale", None)
        picture = ffmpeg.input(item.path, **options)["v:0"]
        if frames:
            picture = picture.filter("trim", end_frame=frames)
        if every:
            picture = sampled_pairs(picture, every)
        if prescale:
            picture = picture.filter("scale", *prescale, flags="lanczos").filter("setsar", 1)
        picture = picture.filter("scale", width, height, flags="bicubic").filter("setsar", 1).filter("format",
                                                                                                     "yuv420p")
        scored = ffmpeg.filter([picture, references.stream(i)], "libvmaf", model=MODEL, n_subsample=subsample,
                               n_threads=threads, log_fmt="json", log_path=log_path)
        outputs.append(scored.output("-", f="null"))
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(
        cmd=vmaf_ffmpeg())


def score(reference: ffmpeg.nodes.FilterableStream, distorted: list[Distorted], width: int, height: int,
          subsample: int = 1, threads: int = 1, timeout: float = 600.0) -> list[VmafScore]:
    """Each distorted picture's VMAF against ``reference`` (frames must correspond one to one, from the start)."""
    return [pooled(found) for found in score_frames(reference, distorted, width, height, subsample, threads,
                                                    timeout)]


def score_frames(reference: ffmpeg.nodes.FilterableStream, distorted: list[Distorted], width: int, height: int,
                 subsample: int = 1, threads: int = 1, timeout: float = 600.0) -> list[list[float]]:
    """Per distorted picture, the VMAF of each scored frame."""
    with tempfile.TemporaryDirectory(prefix="vodflow-vmaf-") as scratch:
        logs = [os.path.join(scratch, f"{i}.json") for i in range(len(distorted))]
        command = score_command(reference, distorted, width, height, logs, subsample, threads)
        result = run_ffmpeg(command, timeout=timeout)
        if result.returncode != 0:
            raise MediaToolError(f"VMAF scoring failed: {result.stderr_tail[-500:]}", result.stderr_tail)
        return [read_log(path) for path in logs]


@dataclass(frozen=True)
class ScoreWindow:
    """A stretch of the video where the renditions are scored: ``length`` s from ``start`` s into the source, in
    ``files`` (one per rendition: a segment, a chunk's piece) from ``offset`` s into each (0: from its first
    frame, which must be the frame at ``start``)."""

    start: float
    length: float
    files: tuple[str, ...]
    offset: float = 0.0


def score_renditions(src: str, source: Any, windows: list[ScoreWindow], width: int, height: int, fps: str,
                     subsample: int = 10, timeout: float = 600.0) -> list[VmafScore]:
    """Each rendition's pooled VMAF over ``windows`` (``rendition_frame_scores``)."""
    return [pooled(found) for found in rendition_frame_scores(src, source, windows, width, height, fps, subsample,
                                                              timeout)]


def rendition_frame_scores(src: str, source: Any, windows: list[ScoreWindow], width: int, height: int, fps: str,
                           subsample: int = 10, timeout: float = 600.0) -> list[list[float]]:
    """Each rendition's per-frame VMAF against the source, at ``width`` x ``height`` (the top rendition's size:
    the source's, unless the source is larger than every rung), sampled: only in ``windows`` and every
    ``subsample``-th frame of each (``sampled_pairs``: only those and the frames before them are scaled and
    compared). Per window, the source is read once for every rendition."""
    from vodflow.media.encode.ffmpeg import normalize_picture, output_grid
    from vodflow.media.source.inputs import source_input

    rate = float(Fraction(fps))
    frames: list[list[float]] = [[] for _ in windows[0].files]
    for window in windows:
        # Both sides read a frame more than the window and are cut to its exact frame count, so a boundary
        # frame that a seek or a duration limit rounds in or out never pairs two different instants.
        count, read = max(1, round(window.length * rate)), f"{window.length + 1 / rate:.6f}"
        picture = source_input(src, ss=f"{window.start:.3f}", t=read)["v:0"]
        grid = output_grid(normalize_picture(picture, source), fps).filter("trim", end_frame=count)
        reference = sampled_pairs(grid, subsample)
        if (source.width, source.height) != (width, height):
            reference = reference.filter("scale", width, height, flags="lanczos")
        # Seeking into a file: half a frame early, so the window's first frame is kept however the seek rounds.
        seek = (("ss", f"{window.offset - 0.5 / rate:.6f}"),) if window.offset else ()
        distorted = [Distorted(path, (*seek, ("t", read), ("frames", count), ("select", subsample)))
                     for path in window.files]
        scores = score_frames(reference, distorted, width, height, subsample=2, timeout=timeout)
        for found, scored in zip(frames, scores, strict=True):
            found.extend(scored)
    return frames


def sampled_pairs(video: ffmpeg.nodes.FilterableStream, every: int) -> ffmpeg.nodes.FilterableStream:
    """Frames 0, every-1, every, 2·every-1, 2·every, …: libvmaf with ``n_subsample=2`` then scores frames 0, every,
    2·every, … each right after its true predecessor, so its motion feature (the smaller of the motion to the frame
    before and to the one after) is what a full run computes, while only 2 frames in ``every`` are scaled."""
    return video.filter("select", f"not(mod(n,{every}))+not(mod(n+1,{every}))")
