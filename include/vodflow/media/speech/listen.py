"""The main audio track as a speech recogniser hears it: 16 kHz mono 16-bit PCM in a raw file on the published
timeline (sample 0 is the file's start, as every other stream of the version), read back in windows so memory
stays flat however long the source is.

The track goes through the encode's own ``audio_track`` (gaps filled, a late start padded, cut at the picture's
end), so a cue's time is a time of the published video, chunked or not."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vodflow.media.encode.ffmpeg import audio_track, ffmpeg_command
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import source_input

RATE = 16_000  # what Whisper models hear
BYTES_PER_SAMPLE = 2
# Where a window may be cut: the quietest 100 ms of its last few seconds, so a word is rarely split.
CUT_SEARCH_SECONDS = 5.0
CUT_FRAME_SECONDS = 0.1


def speech_command(src: str, out_path: str, source: SourceInfo) -> list[str]:
    """ffmpeg's arguments: the main track, continuous and as long as the picture, as raw s16le 16 kHz mono."""
    track = audio_track(source_input(src), source).filter("aresample", RATE)
    return ffmpeg_command(track.output(out_path, f="s16le", acodec="pcm_s16le", ac=1, ar=RATE))


def decode_speech(src: str, out_path: str, source: SourceInfo, timeout: float) -> float:
    """Write the track to ``out_path``; its length in seconds. Lower priority than the encodes beside it."""
    run_ffmpeg(speech_command(src, out_path, source), duration=source.picture_end, timeout=timeout, redact=src,
               niceness=5)
    return os.path.getsize(out_path) / BYTES_PER_SAMPLE / RATE


@dataclass(frozen=True)
class Window:
    start: float  # seconds on the published timeline
    samples: np.ndarray  # float32 in [-1, 1)


def windows(pcm_path: str, seconds: float) -> Iterator[Window]:
    """The raw file in windows of about ``seconds`` (the last one shorter), each cut at the quietest moment near
    its end; only one window is in memory at a time."""
    size = os.path.getsize(pcm_path) // BYTES_PER_SAMPLE
    step = max(int(seconds * RATE), int(2 * CUT_SEARCH_SECONDS * RATE))
    start = 0
    with open(pcm_path, "rb") as f:
        while start < size:
            f.seek(start * BYTES_PER_SAMPLE)
            count = min(step, size - start)
            samples = np.frombuffer(f.read(count * BYTES_PER_SAMPLE), dtype="<i2").astype(np.float32) / 32768.0
            if start + count < size:
                count = quiet_cut(samples)
                samples = samples[:count]
            yield Window(start / RATE, samples)
            start += count


def quiet_cut(samples: np.ndarray) -> int:
    """The sample to cut at: the middle of the quietest 100 ms frame in the last ``CUT_SEARCH_SECONDS``."""
    frame = int(CUT_FRAME_SECONDS * RATE)
    first = max(0, len(samples) - int(CUT_SEARCH_SECONDS * RATE))
    tail = samples[first: first + (len(samples) - first) // frame * frame]
    if len(tail) < frame:
        return len(samples)
    energy = np.square(tail.reshape(-1, frame)).mean(axis=1)
    return first + int(np.argmin(energy)) * frame + frame // 2
