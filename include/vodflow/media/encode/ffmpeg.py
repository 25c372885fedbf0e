"""The ffmpeg vocabulary every media module speaks: what may be opened, how the source is read, the picture every
output starts from, codec options apart from muxer options, the command line, and why a run failed.

Encoding (``encode``), chunking (``chunks``), pictures (``thumbnails``), the per-title probe (``quality_probe``) and
probing (``probe``) all build on these, so an input or an option is defined once. No Airflow, S3 or database.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import ffmpeg

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError, VodflowError
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.process import RunResult

if TYPE_CHECKING:
    from vodflow.media.source.probe import SourceInfo

# Only these demuxers may open an upload, and only these protocols: an upload cannot make ffmpeg follow a
# playlist or read local files.
ALLOWED_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,mxf,dv"
HTTP_PROTOCOLS = "http,https,tcp,tls,crypto"
FILE_PROTOCOLS = "file"
SEGMENT_PATTERN = "seg_%05d.ts"
# HDR (PQ/HLG) to SDR BT.709: linearise, tone-map, back to BT.709 limited range. The last zscale itself makes
# the YUV (its BT.709 matrix, dithered to 8 bits): left in RGB, the picture was turned into YUV by the scale filter
# with swscale's default BT.601 matrix, and the encoder got no matrix to write. So the frames carry BT.709
# primaries, transfer and matrix, and ffmpeg writes all three into the stream.
TONEMAP_CHAIN = [
    ("zscale", {"t": "linear", "npl": 100}),
    ("format", {"pix_fmts": "gbrpf32le"}),
    ("zscale", {"p": "bt709"}),
    ("tonemap", {"tonemap": "hable", "desat": 0}),
    ("zscale", {"t": "bt709", "m": "bt709", "r": "tv", "d": "error_diffusion"}),
    ("format", {"pix_fmts": "yuv420p"}),
]
DECODE_FAILURE_MARKERS = ("Invalid data found", "moov atom not found", "error reading header",
                          "Error while decoding", "corrupt", "Invalid NAL unit")


@dataclass(frozen=True)
class EncoderSettings:
    preset: str = "veryfast"
    keyframe_seconds: int = 2
    segment_seconds: int = 6
    threads: int = 0  # 0: let x264 decide
    timeout_base: float = 600.0
    timeout_per_source_second: float = 6.0

    def timeout_for(self, duration: float) -> float:
        """Sized from the source duration: a stuck encode is stopped, a long one is not."""
        return self.timeout_base + self.timeout_per_source_second * duration


def source_input(src: str, **options: object) -> ffmpeg.nodes.FilterableStream:
    """The source as an ffmpeg input: a local file, or a presigned HTTP(S) URL read as it is encoded.

    Either way only whitelisted demuxers open it, and an HTTP read that breaks off is resumed where it stopped.
    ``options`` are further input options (e.g. ``ss``/``t`` to read one window).
    """
    if src.startswith(("http://", "https://")):
        return ffmpeg.input(src, protocol_whitelist=HTTP_PROTOCOLS, format_whitelist=ALLOWED_DEMUXERS,
                            reconnect=1, reconnect_on_network_error=1, reconnect_on_http_error="5xx",
                            reconnect_delay_max=30, rw_timeout=60_000_000, **options)
    return ffmpeg.input(src, protocol_whitelist=FILE_PROTOCOLS, format_whitelist=ALLOWED_DEMUXERS, **options)


def ffmpeg_command(output: ffmpeg.nodes.OutputStream, *global_options: str) -> list[str]:
    """The argument list; ``global_options`` (e.g. ``-copyts``) go before the inputs, where ffmpeg reads them."""
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning", *global_options, *output.get_args()]


def normalize_picture(video: ffmpeg.nodes.FilterableStream, source: SourceInfo) -> ffmpeg.nodes.FilterableStream:
    """Progressive SDR pictures from any source: deinterlace, tone-map HDR to BT.709."""
    if source.interlaced:
        video = video.filter("bwdif", mode="send_frame")
    if source.hdr:
        for name, options in TONEMAP_CHAIN:
            video = video.filter(name, **options)
    return video


def output_grid(video: ffmpeg.nodes.FilterableStream, fps: str, *, from_zero: bool = True
                ) -> ffmpeg.nodes.FilterableStream:
    """The constant-rate output picture: frame n at n / fps on the source's timeline (time base 1/fps, so a
    frame's pts is its number). ``from_zero``: a video that starts after its audio gets its first picture held
    from 0, so the video and the frame grid start where the timeline does, in every command shape."""
    return video.filter("fps", fps=fps, start_time=0) if from_zero else video.filter("fps", fps=fps)


def scaled(video: ffmpeg.nodes.FilterableStream, rendition: Rendition) -> ffmpeg.nodes.FilterableStream:
    return (video.filter("scale", rendition.width, rendition.height, flags="lanczos")
            .filter("setsar", 1).filter("format", "yuv420p"))


def video_codec_options(rendition: Rendition, settings: EncoderSettings, first_frame: int = 0) -> dict[str, object]:
    """libx264 for one rendition: the same in every command shape (whole video, chunk), so outputs match.

    ``first_frame``: the encode's first frame on the video's output grid (a chunk's), so a chunk forces its IDRs
    on the same frames as an encode of the whole video: the first frame at or after every ``keyframe_seconds``.
    Counted in frames (``n``), not ``t``: what ``t`` starts from after a seek differs between ffmpeg versions."""
    period = settings.keyframe_seconds
    if first_frame:
        rate = Fraction(rendition.fps)
        second = f"*{rate.denominator}/({period}*{rate.numerator})"  # frame number → keyframe period number
        keyframes = f"expr:eq(n,0)+gt(floor((n+{first_frame}){second}),floor((n+{first_frame - 1}){second}))"
    else:
        keyframes = f"expr:gte(t,n_forced*{period})"
    options: dict[str, object] = {
        "c:v": "libx264",
        "preset": settings.preset,
        "profile:v": "high",
        "b:v": f"{rendition.video_kbps}k",
        "maxrate": f"{rendition.maxrate_kbps}k",
        "bufsize": f"{rendition.bufsize_kbits}k",
        "force_key_frames": keyframes,
        "forced-idr": 1,
        "sc_threshold": 0,
        # x264 must never add a keyframe of its own between the forced ones.
        "g": 2 * math.ceil(float(Fraction(rendition.fps)) * settings.keyframe_seconds),
        "x264-params": "scenecut=0:open-gop=0",
        "max_muxing_queue_size": 4096,
    }
    if settings.threads:
        options["threads"] = settings.threads
    return options


def audio_codec_options(kbps: int) -> dict[str, object]:
    """AAC-LC 48 kHz stereo (Apple HLS 2.9)."""
    return {"c:a": "aac", "b:a": f"{kbps}k", "ar": 48000, "ac": 2}


def audio_track(stream: ffmpeg.nodes.FilterableStream, source: SourceInfo, index: int | None = None
                ) -> ffmpeg.nodes.FilterableStream:
    """The main audio track, continuous and exactly as long as the video: ``aresample`` fills gaps and drops
    overlaps from broken timestamps and starts it at 0 (silence before a late start), ``apad`` adds silence after
    an early end, ``atrim`` cuts what runs past the picture. So every segment carries audio for its whole length.
    ``index``: which audio stream (``a:N``); by default the main track (the one the source flags default).
    """
    end = f"{source.picture_end:.6f}"
    track = source.audio_index if index is None else index
    return (stream[f"a:{track}"].filter("aresample", **{"async": 1, "first_pts": 0})
            .filter("apad", whole_dur=end).filter("atrim", end=end))


# Drop user metadata (GPS position, device, titles) and chapters from every published file.
STRIP_METADATA: dict[str, object] = {"map_metadata": -1, "map_chapters": -1}


def hls_muxer_options(settings: EncoderSettings, out_dir: str) -> dict[str, object]:
    """VOD HLS with MPEG-TS segments cut on the keyframe grid (the playlists are rewritten from measurements)."""
    return {
        "f": "hls",
        "hls_time": settings.segment_seconds,
        "hls_playlist_type": "vod",
        "hls_segment_type": "mpegts",
        "hls_list_size": 0,
        "hls_flags": "independent_segments",
        "hls_segment_filename": os.path.join(out_dir, SEGMENT_PATTERN),
    }


MIN_FREE_SCRATCH_BYTES = 64 * 1024 * 1024


def classify_failure(result: RunResult, out_dir: str | None = None) -> VodflowError:
    """The reason an ffmpeg run failed: the video's fault (BadInput) or the machine's (retried)."""
    tail = result.stderr_tail
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")[:300]
    if result.returncode < 0:
        return MediaToolError(f"ffmpeg was killed by signal {-result.returncode}", tail)
    # ffmpeg often reports a full disk only as "Failed to open file" or "Input/output error": look at the disk.
    if "No space left on device" in tail or (out_dir and free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES):
        where = f" at {out_dir}" if out_dir else ""
        return MediaToolError(f"the scratch disk is full{where} (No space left on device); ffmpeg said: {last}", tail)
    if any(marker in tail for marker in DECODE_FAILURE_MARKERS):
        return BadInput(errors.UNREADABLE, f"The video cannot be decoded; the file is corrupt. ffmpeg said: {last}")
    return MediaToolError(f"ffmpeg failed with exit code {result.returncode}: {last}", tail)


def free_bytes(path: str) -> int:
    """Free space of the filesystem holding ``path`` (or its nearest existing parent)."""
    current = os.path.abspath(path)
    while True:
        try:
            return shutil.disk_usage(current).free
        except OSError:
            parent = os.path.dirname(current)
            if parent == current:
                return MIN_FREE_SCRATCH_BYTES  # cannot tell: say nothing about the disk
            current = parent


def raise_if_disk_full(out_dir: str) -> None:
    if free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES:
        raise MediaToolError(f"the scratch disk is full at {out_dir} (No space left on device)")


