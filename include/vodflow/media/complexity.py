"""How hard a source is to encode, measured: short trial encodes at a fixed quality (the per-title ladder).

A few 2 s windows spread over the source are decoded once each and encoded at every planned rendition's size
with x264 at constant quality (CRF). The bitrate x264 needed for that quality is the content's complexity: a
slide deck needs a fraction of what a football match needs. ``ladder.adapt_ladder`` turns the measurements into
each rung's bitrate. Commands are argument lists built with ffmpeg-python.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.ffmpeg import normalize_picture, scaled, source_input
from vodflow.media.ladder import Rendition
from vodflow.media.probe import SourceInfo
from vodflow.media.process import run_ffmpeg

log = logging.getLogger(__name__)

WINDOW_SECONDS = 2.0
# Where the windows sit, as fractions of the source (beginnings and ends are often titles or black).
WINDOW_POSITIONS = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class Complexity:
    """Per rendition name: the video kbps x264 needed at ``crf`` on the sampled windows (their mean)."""

    crf: int
    kbps: dict[str, int]
    seconds_sampled: float


def sample_windows(duration: float) -> list[tuple[float, float]]:
    """(start, length) of the trial windows: three spread out, or the whole of a short source."""
    if duration <= len(WINDOW_POSITIONS) * WINDOW_SECONDS * 2:
        return [(0.0, min(duration, 2 * WINDOW_SECONDS))]
    return [(round(position * (duration - WINDOW_SECONDS), 3), WINDOW_SECONDS) for position in WINDOW_POSITIONS]


def trial_command(src: str, start: float, length: float, source: SourceInfo, renditions: list[Rendition],
                  crf: int, preset: str, out_dir: str) -> list[str]:
    """One window decoded once, encoded at every rendition's size at constant quality, video only."""
    stream = source_input(src, ss=f"{start:.3f}", t=f"{length:.3f}").video
    stream = normalize_picture(stream.filter("fps", fps=renditions[0].fps), source)
    branches = stream.filter_multi_output("split", len(renditions))
    outputs = [
        scaled(branches.stream(i), rendition).output(
            os.path.join(out_dir, f"{rendition.name}.264"), **{
                "c:v": "libx264", "preset": preset, "crf": crf, "profile:v": "high", "an": None,
                "x264-params": "scenecut=0:open-gop=0", "f": "h264"})
        for i, rendition in enumerate(renditions)
    ]
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(
        cmd="ffmpeg", overwrite_output=True)


def measure_complexity(src: str, source: SourceInfo, renditions: list[Rendition], crf: int = 18,
                       preset: str = "veryfast", timeout: float = 600.0) -> Complexity:
    """Trial-encode the sample windows of ``src`` at every rendition's size; mean kbps per rendition."""
    totals = {r.name: 0 for r in renditions}
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="vodflow-complexity-") as out_dir:
        for start, length in sample_windows(source.duration):
            command = trial_command(src, start, length, source, renditions, crf, preset, out_dir)
            result = run_ffmpeg(command, timeout=timeout)
            if result.returncode != 0:
                raise MediaToolError(f"the complexity probe failed: {result.stderr_tail}", result.stderr_tail)
            for rendition in renditions:
                totals[rendition.name] += os.path.getsize(os.path.join(out_dir, f"{rendition.name}.264"))
            seconds += length
    kbps = {name: round(total * 8 / seconds / 1000) for name, total in totals.items()}
    log.info("Complexity at CRF %d over %.0f s: %s", crf, seconds, ", ".join(f"{n} {k}k" for n, k in kbps.items()))
    return Complexity(crf=crf, kbps=kbps, seconds_sampled=seconds)
