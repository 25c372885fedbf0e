"""WebM downloads: AV1 video and Opus audio in one WebM file per rendition, with its index (Cues) at the front, so
a browser's ``<video>`` can seek while the file is still downloading. No Airflow, S3 or database.

The picture comes from one of two places:
- **copy** (``Av1Track``): the run's own AV1 rendition of the rung, a CMAF track (``init.mp4`` + ``seg_*.m4s``),
  stream-copied from fragmented MP4 into WebM: no second encode, no second generation;
- **encode** (otherwise): the H.264 rendition's MPEG-TS segments decoded and encoded once more with SVT-AV1 (a
  second generation, at the rung's size and ``codecs.CODECS["av1"].rate_factor`` × its bits).
The sound is always the rendition's own AAC decoded and encoded as Opus (a transcode of an encode, 96–128 kbps): that
track is already what every other output carries — padded to the picture's length, on the same timeline, loudness
applied — so the download cannot drift from the stream; the source is not read again.

Timing: both inputs are read with their timestamps as they are (``-copyts``) and put on one timeline whose 0 is the
rendition's first picture (the TS's first video PTS; for a copied track, its own first picture), so the first frame
is at 0 and the sound keeps its offset to the picture exactly (no ms-rounding of a shifted start to the frame grid).
The sound is cut where the picture ends, so the file lasts as long as the rendition.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode.codec_options import av1_crf
from vodflow.media.encode.codecs import modern_ffmpeg
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import STRIP_METADATA, ffmpeg_command
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.source.inputs import FILE_PROTOCOLS

# SVT-AV1 4.x preset (bench/webm.py, 10 s of 720p): 10 costs what x264 veryfast's encode of the rung does (1.0x);
# 9 gives +1.3 VMAF for 1.6x that CPU, 11 -1.2 VMAF for 0.85x. libvpx VP9 at the same bits: +2.4 VMAF for 5.3x.
AV1_PRESET = 10
KEYFRAME_SECONDS = 2.0
OPUS_KBPS_LOW, OPUS_KBPS_HIGH = 96, 128  # stereo Opus: transparent-ish at 128, plenty for a small rung at 96
OPUS_CODEC = "opus"  # RFC 6381 / WebM codecs parameter
_CONCAT_PROTOCOLS = "concat,file"


@dataclass(frozen=True)
class Av1Track:
    """An AV1 CMAF track to stream-copy: its init segment and its media segments, in order."""

    init: str
    segments: tuple[str, ...]


def av1_track_in(folder: str) -> Av1Track | None:
    """The CMAF track in a folder (``init.mp4`` + ``seg_NNNNN.m4s``, the layout of every CMAF track here), or None
    when the folder holds none."""
    init = os.path.join(folder, "init.mp4")
    if not os.path.isfile(init):
        return None
    segments = sorted(n for n in os.listdir(folder) if n.startswith("seg_") and n.endswith(".m4s"))
    if not segments:
        return None
    return Av1Track(init, tuple(os.path.join(folder, n) for n in segments))


@dataclass(frozen=True)
class WebmPicture:
    """What an encoded picture must be (the copy path takes the track's own)."""

    width: int
    height: int
    fps: str  # fraction string, the rendition's constant rate
    video_kbps: int  # the AV1 rate (``codecs.codec_ladder``'s for the rung)


@dataclass(frozen=True)
class WebmFacts:
    duration: float  # the container's, seconds
    video_duration: float
    codecs: str  # RFC 6381, e.g. "av01.0.04M.08,opus"


def opus_kbps(aac_kbps: int) -> int:
    return OPUS_KBPS_HIGH if aac_kbps > OPUS_KBPS_LOW else OPUS_KBPS_LOW


def first_pts(url: str, stream: str, fmt: str) -> float:
    """The first packet's PTS (seconds) of ``stream`` (``v:0``, ``a:0``) of a file or a ``concat:`` of files."""
    out = subprocess.run(["ffprobe", "-v", "error", "-protocol_whitelist", FILE_PROTOCOLS + ",concat",  # noqa: S603
                          "-f", fmt, "-select_streams", stream, "-show_entries", "packet=pts_time",
                          "-read_intervals", "%+#1", "-of", "json", url],
                         capture_output=True, text=True, check=False, timeout=60)
    try:
        return float(json.loads(out.stdout)["packets"][0]["pts_time"])
    except (ValueError, KeyError, IndexError) as exc:
        raise MediaToolError(f"no {stream} packet in {os.path.basename(url)[-80:]}", out.stderr) from exc


def _concat(paths: list[str] | tuple[str, ...]) -> str:
    if not paths:
        raise MediaToolError("no segments to make a WebM from")
    return "concat:" + "|".join(paths)


def webm_command(segments: list[str], out: str, duration: float, *, picture: WebmPicture | None = None,
                 av1: Av1Track | None = None, audio_kbps: int = 0,
                 origin: float = 0.0, av1_origin: float = 0.0) -> list[str]:
    """The ffmpeg (``modern_ffmpeg``) argument list of one WebM download.

    ``segments``: the rendition's TS segments (the audio, and the picture when ``av1`` is None); ``origin``: their
    first video PTS (seconds), the timeline's 0. ``av1``: an AV1 track to copy, whose first picture is at
    ``av1_origin``. ``audio_kbps``: the rendition's AAC rate (0: no sound). ``duration``: the rendition's."""
    if (picture is None) == (av1 is None):
        raise ValueError("a WebM is made either from a picture to encode or from an AV1 track to copy")
    ts = ffmpeg.input(_concat(segments), protocol_whitelist=_CONCAT_PROTOCOLS, f="mpegts")
    end = f"{duration:.6f}"
    streams: list[ffmpeg.nodes.FilterableStream] = []
    options: dict[str, object] = {}
    if av1 is not None:
        track = ffmpeg.input(_concat([av1.init, *av1.segments]), protocol_whitelist=_CONCAT_PROTOCOLS, f="mp4",
                             itsoffset=f"{-av1_origin:.6f}")
        streams.append(track["v:0"])
        options["c:v"] = "copy"
    else:
        assert picture is not None
        rate = Fraction(picture.fps)
        streams.append(ts["v:0"].filter("setpts", f"PTS-{origin:.6f}/TB").filter("trim", end=end))
        options.update({
            "c:v": "libsvtav1", "preset": AV1_PRESET, "pix_fmt": "yuv420p",
            # The AV1 ladder's rate control (codec_options): its CRF for this size under the rung's cap.
            "crf": av1_crf(picture.width, picture.height), "maxrate": f"{int(picture.video_kbps * 1.5)}k",
            "bufsize": f"{picture.video_kbps * 2}k",
            # A keyframe every 2 s by SVT's own GOP (every 60 frames at 29.97 fps: 2.002 s), not forced: forced
            # keyframes are outside SVT's rate-control plan, which then overshot its rate by ~40 % (bench/webm.py).
            "g": round(float(rate) * KEYFRAME_SECONDS),
        })
    if audio_kbps:
        streams.append(ts["a:0"].filter("asetpts", f"PTS-{origin:.6f}/TB").filter("atrim", start=0, end=end))
        options.update({"c:a": "libopus", "b:a": f"{opus_kbps(audio_kbps)}k", "ar": 48000, "ac": 2})
    # No metadata at all, not even the title (a download's name comes only from its escaped Content-Disposition).
    args = ffmpeg_command(ffmpeg.output(*streams, out, f="webm", cues_to_front=1, **options, **STRIP_METADATA),
                          "-copyts")
    return [modern_ffmpeg(), *args[1:]]


def make_webm(segments: list[str], out: str, duration: float, *, picture: WebmPicture | None = None,
              av1: Av1Track | None = None, audio_kbps: int = 0) -> WebmFacts:
    """Make one WebM download (see ``webm_command``) and say what it is; a failure is ours (our own encode)."""
    origin = first_pts(_concat(segments[:1]), "v:0", "mpegts")
    av1_origin = first_pts(_concat([av1.init, *av1.segments[:1]]), "v:0", "mp4") if av1 else 0.0
    args = webm_command(segments, out, duration, picture=picture, av1=av1, audio_kbps=audio_kbps, origin=origin,
                        av1_origin=av1_origin)
    # Generous: SVT-AV1 at preset 10 encodes a 1080p rung at about real time here (a copy is far faster).
    result = run_ffmpeg(args, duration=duration, timeout=120.0 + (4.0 if av1 is None else 1.0) * duration)
    if result.returncode != 0 or not os.path.exists(out):
        raise classify_failure(result, os.path.dirname(out))
    return webm_facts(out)


def webm_facts(path: str) -> WebmFacts:
    """ffprobe's durations and the exact RFC 6381 codecs of a WebM we made (AV1's from its ``av1C`` record)."""
    done = subprocess.run(  # noqa: S603 - argument list, a file we wrote
        ["ffprobe", "-v", "error", "-show_data", "-show_entries",
         "format=duration:stream=codec_type,codec_name,duration,extradata:stream_tags=DURATION", "-of", "json", path],
        capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise MediaToolError(f"ffprobe could not read {os.path.basename(path)}: {done.stderr.strip()[-300:]}")
    data = json.loads(done.stdout)
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or video.get("codec_name") != "av1":
        raise MediaToolError(f"{os.path.basename(path)} has no AV1 video stream")
    codecs = [av1_codec_string(extradata_bytes(video.get("extradata", "")))]
    if any(s.get("codec_name") == "opus" for s in streams):
        codecs.append(OPUS_CODEC)
    return WebmFacts(duration=float(data["format"]["duration"]), video_duration=_tag_seconds(video),
                     codecs=",".join(codecs))


def _tag_seconds(stream: dict) -> float:
    """A Matroska stream's ``DURATION`` tag ("00:00:05.000000000") in seconds (the stream has no other)."""
    text = (stream.get("tags") or {}).get("DURATION", "")
    try:
        hours, minutes, seconds = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return float(stream.get("duration") or 0.0)


def extradata_bytes(dump: str) -> bytes:
    """ffprobe's ``-show_data`` hex dump ("00000000: 8104 0c00 ...  text") back to bytes."""
    out = bytearray()
    for line in dump.splitlines():
        _, _, rest = line.partition(":")
        out += bytes.fromhex("".join(rest.strip().split("  ")[0].split()))
    return bytes(out)


def av1_codec_string(av1c: bytes) -> str:
    """``av01.P.LLT.DD`` (the AV1 ISOBMFF binding, section "Codecs Parameter String") from an ``av1C`` record:
    profile, level index, tier (M/H) and bit depth."""
    if len(av1c) < 4 or av1c[0] != 0x81:  # marker 1, version 1
        raise MediaToolError("the AV1 stream has no av1C configuration record")
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high_bitdepth, twelve_bit = bool(av1c[2] & 0x40), bool(av1c[2] & 0x20)
    depth = 12 if twelve_bit else 10 if high_bitdepth else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
