"""Real encoded sample media, generated with ffmpeg, for the demo, the tests and the benchmarks.

The picture is ffmpeg's testsrc2 (moving shapes, a counter, colour bars) with light temporal noise so it
costs an encoder roughly what camera footage does; the sound is a tone with a beat so gaps are audible.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class SampleSpec:
    width: int = 1920
    height: int = 1080
    duration: float = 20.0
    fps: str = "30"
    audio: bool = True
    noise: int = 6
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    extra_output_args: tuple[str, ...] = ()


def make_sample(path: str, spec: SampleSpec = SampleSpec()) -> str:
    picture = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}"
    if spec.noise:
        picture += f",noise=alls={spec.noise}:allf=t"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", picture]
    if spec.audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000"]
    args += ["-t", f"{spec.duration}", "-c:v", spec.codec, "-pix_fmt", spec.pix_fmt]
    if spec.codec == "libx264":
        # About what a phone or camera uploads: ~12 Mbps at 1080p30, scaled by pixel rate.
        kbps = max(300, int(12000 * spec.width * spec.height / (1920 * 1080) * float(Fraction(spec.fps)) / 30))
        # Keyframes every 2 s, as phones and cameras write them (x264's default would be every 250 frames).
        args += ["-preset", "ultrafast", "-b:v", f"{kbps}k", "-maxrate", f"{kbps * 3 // 2}k",
                 "-bufsize", f"{kbps * 2}k", "-g", str(round(2 * float(Fraction(spec.fps))))]
    if spec.audio:
        args += ["-c:a", "aac", "-b:a", "160k", "-ac", "2"]
    args += [*spec.extra_output_args, path]
    subprocess.run(args, check=True)  # noqa: S603 - fixed argument list
    return path
