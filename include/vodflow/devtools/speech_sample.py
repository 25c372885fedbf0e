"""Spoken test media: a known text read by espeak-ng (Debian), one WAV per sentence joined with known silences,
muxed under a still picture. The tests and ``bench/captions.py`` know where each sentence's speech starts (its
first sample above the noise floor), so caption timing can be checked, and the words, so a WER can be measured."""

from __future__ import annotations

import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SENTENCES = (
    "Welcome to the weekly video report from the engineering team.",
    "Today we talk about how a small upload becomes a stream that plays on every phone.",
    "First the source is checked, and then it is encoded into several sizes.",
    "Every part of the picture keeps its sound in sync from the first second to the last.",
    "Captions help people who cannot hear the audio, and they make each video easy to search.",
    "Thank you for watching, and see you next week.",
)
RATE = 22_050  # espeak-ng's own rate


@dataclass(frozen=True)
class SpokenSample:
    path: str
    text: str
    starts: tuple[float, ...]  # where each sentence's speech starts, seconds from the file's start
    duration: float


def _speak(sentence: str, path: Path, speed: int) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(path), sentence],  # noqa: S603
                   check=True, capture_output=True)
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def make_spoken_video(path: str, sentences: tuple[str, ...] = SENTENCES, gap: float = 1.2, lead: float = 1.0,
                      speed: int = 150, size: str = "320x180", fps: str = "30") -> SpokenSample:
    """``path`` (MP4, H.264 + AAC): ``lead`` s of silence, then each sentence followed by ``gap`` s of silence."""
    folder = Path(path).parent
    pieces, starts = [np.zeros(int(lead * RATE), dtype="<i2")], []
    position = len(pieces[0])
    for index, sentence in enumerate(sentences):
        samples = _speak(sentence, folder / f"sentence-{index}.wav", speed)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
        starts.append((position + (int(loud[0]) if len(loud) else 0)) / RATE)
        pieces += [samples, np.zeros(int(gap * RATE), dtype="<i2")]
        position += len(samples) + int(gap * RATE)
    speech = folder / "speech.wav"
    with wave.open(str(speech), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(pieces).tobytes())
    duration = position / RATE
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",  # noqa: S603
                    f"testsrc2=s={size}:r={fps}:d={duration:.3f}", "-i", str(speech), "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000", "-ac", "2",
                    "-shortest", path], check=True)
    return SpokenSample(path, " ".join(sentences), tuple(starts), duration)


def make_tone_video(path: str, seconds: float = 8.0, tone: bool = True) -> str:
    """A picture over a 440 Hz sine (music-like: no speech) or over silence."""
    audio = f"sine=f=440:d={seconds}" if tone else f"anullsrc=r=48000:cl=stereo:d={seconds}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",  # noqa: S603
                    f"testsrc2=s=320x180:r=30:d={seconds}", "-f", "lavfi", "-i", audio, "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000", "-shortest", path],
                   check=True)
    return path


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (numbers as digits stay as they are)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words: Levenshtein over words."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))
