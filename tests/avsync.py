"""Measure lip sync in a finished rendition, as broadcast engineers do: find the flash frames (``signalstats``
YAVG) and the beep onsets (``silencedetect``) of a sync source (``make_sync_sample``), both read from the same
file with its timestamps as they are, and pair them up."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyncReport:
    flashes: list[float]  # pts of each flash frame, seconds
    beeps: list[float]  # start of each beep, seconds
    offsets_ms: list[float]  # flash - beep for each flash, in ms (positive: picture late)
    frames: int  # video frames decoded

    @property
    def worst_ms(self) -> float:
        return max(abs(o) for o in self.offsets_ms)


def measure_sync(media: Path) -> SyncReport:
    with tempfile.TemporaryDirectory() as tmp:
        video_log, audio_log = Path(tmp, "v.txt"), Path(tmp, "a.txt")
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-copyts",  # noqa: S603
                        "-i", str(media),
                        "-map", "0:v:0", "-vf",
                        f"signalstats,metadata=print:key=lavfi.signalstats.YAVG:file={video_log}",
                        "-map", "0:a:0", "-af", f"silencedetect=n=-30dB:d=0.3,ametadata=print:file={audio_log}",
                        "-f", "null", "-"], check=True, capture_output=True)
        frames = _frames(video_log.read_text())
        beeps = [float(v) for v in re.findall(r"lavfi\.silence_end=([-\d.]+)", audio_log.read_text())]
    flashes = [t for t, yavg in frames if yavg > 128]
    offsets = [1000 * (flash - min(beeps, key=lambda b: abs(b - flash))) for flash in flashes] if beeps else []
    return SyncReport(flashes=flashes, beeps=beeps, offsets_ms=offsets, frames=len(frames))


def _frames(text: str) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    pts: float | None = None
    for line in text.splitlines():
        if line.startswith("frame:"):
            pts = float(re.search(r"pts_time:([-\d.]+)", line).group(1))
        elif line.startswith("lavfi.signalstats.YAVG=") and pts is not None:
            out.append((pts, float(line.split("=", 1)[1])))
    return out
