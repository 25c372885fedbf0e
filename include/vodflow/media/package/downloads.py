"""Download files from an encoded rendition's own HLS segments: an MP4 (both streams copied, the index moved to
the front so a browser plays it while it downloads), an M4A (the AAC copied) and an MP3 (the only re-encode:
libmp3lame, 192 kbps by default). No second read of the source; no Airflow, S3 or database.

The segments are MPEG-TS concatenated as they are (``concat:``), as the chunk join reads them; ffmpeg moves the
first timestamp to zero, keeping any offset between audio and video.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import STRIP_METADATA, ffmpeg_command
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.escaping import one_line

MP3_KBPS = 192
MP3_CODEC = "mp3"  # the RFC 6381 / HLS CODECS name of MPEG-1 Layer III
_CONCAT_PROTOCOLS = "concat,file"


@dataclass(frozen=True)
class MediaFacts:
    """What ffprobe says of a finished file: its duration and its streams' codec names."""

    duration: float
    codecs: tuple[str, ...]


def _segments_input(segments: list[str]) -> ffmpeg.nodes.FilterableStream:
    if not segments:
        raise MediaToolError("no segments to make a download from")
    return ffmpeg.input("concat:" + "|".join(segments), protocol_whitelist=_CONCAT_PROTOCOLS, f="mpegts")


def _tags(title: str | None) -> dict[str, object]:
    """No metadata from the source (``STRIP_METADATA``), only the video's title, as one line of text (a player
    shows it; ``escaping.one_line``)."""
    title = one_line(title or "", 200)
    return {**STRIP_METADATA, **({"metadata": f"title={title}"} if title else {})}


def mp4_command(segments: list[str], out: str, title: str | None = None) -> list[str]:
    """Video and audio copied into an MP4 with ``moov`` ahead of ``mdat`` (``faststart``)."""
    stream = _segments_input(segments)
    return ffmpeg_command(ffmpeg.output(stream["v:0"], stream["a?"], out, c="copy", movflags="+faststart",
                                        **{"bsf:a": "aac_adtstoasc"}, **_tags(title)))


def m4a_command(segments: list[str], out: str, title: str | None = None) -> list[str]:
    """The AAC track copied into an M4A (audio-only MP4, faststart)."""
    stream = _segments_input(segments)
    return ffmpeg_command(ffmpeg.output(stream["a:0"], out, vn=None, acodec="copy", movflags="+faststart",
                                        **{"bsf:a": "aac_adtstoasc"}, **_tags(title)))


def mp3_command(segments: list[str], out: str, title: str | None = None, kbps: int = MP3_KBPS) -> list[str]:
    """The audio decoded once more and encoded as a constant-bitrate MP3 (with a Xing/LAME header, so players
    know its exact length and skip the encoder delay)."""
    stream = _segments_input(segments)
    return ffmpeg_command(ffmpeg.output(stream["a:0"], out, vn=None, acodec="libmp3lame", audio_bitrate=f"{kbps}k",
                                        **{"id3v2_version": 3}, **_tags(title)))


def run(args: list[str], out: str, seconds: float) -> MediaFacts:
    """Run a download command and say what it made; a failure is ours (the segments are our own encode)."""
    result = run_ffmpeg(args, duration=seconds, timeout=120.0 + seconds)
    if result.returncode != 0 or not os.path.exists(out):
        raise classify_failure(result, os.path.dirname(out))
    return media_facts(out)


def media_facts(path: str) -> MediaFacts:
    """ffprobe's container duration and stream codecs of a file we made."""
    done = subprocess.run(  # noqa: S603 - argument list, a file we wrote
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", path],
        capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise MediaToolError(f"ffprobe could not read {os.path.basename(path)}: {done.stderr.strip()[-300:]}")
    data = json.loads(done.stdout)
    return MediaFacts(duration=float(data["format"]["duration"]),
                      codecs=tuple(s["codec_name"] for s in data.get("streams", [])))
