"""Encode one rendition to HLS with ffmpeg, then measure what was written.

Every rendition of a video is encoded with the same rules so the variants switch cleanly: a constant output
frame rate, an IDR keyframe forced every 2 s on the output timeline (scene-cut off, closed GOPs), 6 s MPEG-TS
segments cut on those keyframes. Commands are built with ffmpeg-python and run as argument lists.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import m3u8

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError, VodflowError
from vodflow.hls import IFrame, MeasuredRendition, Segment
from vodflow.ladder import Rendition
from vodflow.mpegts import PTS_HZ, avc_codec_string, index_segment
from vodflow.probe import ALLOWED_DEMUXERS, FILE_PROTOCOLS, HTTP_PROTOCOLS, SourceInfo
from vodflow.process import RunResult, run_ffmpeg

log = logging.getLogger(__name__)
# Adds outputs fed from one branch of the decoded, normalised, constant-rate picture (e.g. the thumbnails).
ExtraOutputs = Callable[[ffmpeg.nodes.FilterableStream], list[ffmpeg.nodes.OutputStream]]

AAC_LC = "mp4a.40.2"
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


def normalize_picture(video: ffmpeg.nodes.FilterableStream, source: SourceInfo) -> ffmpeg.nodes.FilterableStream:
    """Progressive SDR pictures from any source: deinterlace, tone-map HDR to BT.709."""
    if source.interlaced:
        video = video.filter("bwdif", mode="send_frame")
    if source.hdr:
        for name, options in TONEMAP_CHAIN:
            video = video.filter(name, **options)
    return video


def output_options(rendition: Rendition, settings: EncoderSettings, out_dir: str) -> dict[str, object]:
    """ffmpeg output options for one rendition: the same in every command shape, so outputs are identical."""
    options: dict[str, object] = {
        "c:v": "libx264",
        "preset": settings.preset,
        "profile:v": "high",
        "b:v": f"{rendition.video_kbps}k",
        "maxrate": f"{rendition.maxrate_kbps}k",
        "bufsize": f"{rendition.bufsize_kbits}k",
        "force_key_frames": f"expr:gte(t,n_forced*{settings.keyframe_seconds})",
        "forced-idr": 1,
        "sc_threshold": 0,
        # x264 must never add a keyframe of its own between the forced ones.
        "g": 2 * math.ceil(float(Fraction(rendition.fps)) * settings.keyframe_seconds),
        "x264-params": "scenecut=0:open-gop=0",
        "map_metadata": -1,  # drop user metadata (GPS position, device, titles) from published media
        "map_chapters": -1,
        "max_muxing_queue_size": 4096,
        "f": "hls",
        "hls_time": settings.segment_seconds,
        "hls_playlist_type": "vod",
        "hls_segment_type": "mpegts",
        "hls_list_size": 0,
        "hls_flags": "independent_segments",
        "hls_segment_filename": os.path.join(out_dir, SEGMENT_PATTERN),
    }
    if settings.threads:
        options["threads"] = settings.threads
    if rendition.audio_kbps:
        options.update({"c:a": "aac", "b:a": f"{rendition.audio_kbps}k", "ar": 48000, "ac": 2})
    return options


def scaled(video: ffmpeg.nodes.FilterableStream, rendition: Rendition) -> ffmpeg.nodes.FilterableStream:
    return (video.filter("scale", rendition.width, rendition.height, flags="lanczos")
            .filter("setsar", 1).filter("format", "yuv420p"))


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


def ffmpeg_command(output: ffmpeg.nodes.OutputStream) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning", *output.get_args()]


def build_encode_command(src: str, out_dir: str, source: SourceInfo, rendition: Rendition,
                         settings: EncoderSettings) -> list[str]:
    """The ffmpeg argument list for one rendition. ``src`` is a path or URL we made, never user input."""
    stream = source_input(src)
    video = scaled(normalize_picture(stream["v:0"], source).filter("fps", fps=rendition.fps), rendition)
    outputs = [video]
    if rendition.audio_kbps:
        outputs.append(stream["a:0"].filter("aresample", **{"async": 1}))
    return ffmpeg_command(ffmpeg.output(*outputs, os.path.join(out_dir, "index.m3u8"),
                                  **output_options(rendition, settings, out_dir)))


def split_picture(video: ffmpeg.nodes.FilterableStream, count: int, extra_outputs: ExtraOutputs | None
                  ) -> tuple[ffmpeg.nodes.FilterNode, list[ffmpeg.nodes.OutputStream]]:
    """``count`` branches of the decoded picture for the renditions, plus what ``extra_outputs`` adds."""
    extra: list[ffmpeg.nodes.OutputStream] = []
    if extra_outputs is not None:
        # Built on a branch of its own; it adds nothing (an unused split output would stall the graph) or more.
        tee = video.filter_multi_output("split", count + 1)
        extra = extra_outputs(tee.stream(count))
        if extra:
            return tee, extra
    return video.filter_multi_output("split", count), extra


def build_multi_encode_command(src: str, out_root: str, source: SourceInfo, renditions: list[Rendition],
                               settings: EncoderSettings, extra_outputs: ExtraOutputs | None = None) -> list[str]:
    """One ffmpeg that decodes the source once and encodes every rendition (into ``out_root/<name>/``).

    ``extra_outputs`` may add outputs fed from the same decoded picture (the poster and thumbnails)."""
    stream = source_input(src)
    fps = {r.fps for r in renditions}
    if len(fps) != 1:
        raise ValueError("renditions decoded together must share a frame rate")
    video = normalize_picture(stream["v:0"], source).filter("fps", fps=fps.pop())
    videos, outputs = split_picture(video, len(renditions), extra_outputs)
    audio_renditions = [r for r in renditions if r.audio_kbps]
    audios = (stream["a:0"].filter("aresample", **{"async": 1}).filter_multi_output("asplit", len(audio_renditions))
              if audio_renditions else None)
    for i, rendition in enumerate(renditions):
        out_dir = os.path.join(out_root, rendition.name)
        streams = [scaled(videos.stream(i), rendition)]
        if rendition.audio_kbps and audios is not None:
            streams.append(audios.stream(audio_renditions.index(rendition)))
        outputs.append(ffmpeg.output(*streams, os.path.join(out_dir, "index.m3u8"),
                                     **output_options(rendition, settings, out_dir)))
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs))


MIN_FREE_SCRATCH_BYTES = 64 * 1024 * 1024


def classify_failure(result: RunResult, out_dir: str | None = None) -> VodflowError:
    """The reason an ffmpeg run failed: the video's fault (BadInput) or the machine's (retried)."""
    tail = result.stderr_tail
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")[:300]
    if result.returncode < 0:
        return MediaToolError(f"ffmpeg was killed by signal {-result.returncode}", tail)
    # ffmpeg often reports a full disk only as "Failed to open file" or "Input/output error": look at the disk.
    if "No space left on device" in tail or (out_dir and _free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES):
        where = f" at {out_dir}" if out_dir else ""
        return MediaToolError(f"the scratch disk is full{where} (No space left on device); ffmpeg said: {last}", tail)
    if any(marker in tail for marker in DECODE_FAILURE_MARKERS):
        return BadInput(errors.UNREADABLE, f"The video cannot be decoded; the file is corrupt. ffmpeg said: {last}")
    return MediaToolError(f"ffmpeg failed with exit code {result.returncode}: {last}", tail)


def measure_output(out_dir: str, rendition: Rendition) -> MeasuredRendition:
    """Read back the segments ffmpeg wrote: durations, sizes, keyframe positions and the real codec profile."""
    playlist = m3u8.load(os.path.join(out_dir, "index.m3u8"))
    segments: list[Segment] = []
    keyframes: list[tuple[str, int, int, int]] = []  # (uri, offset, length, pts)
    first_pts: int | None = None
    codec: str | None = None
    for entry in playlist.segments:
        data = Path(out_dir, entry.uri).read_bytes()
        index = index_segment(data)
        segments.append(Segment(uri=entry.uri, duration=float(entry.duration), size=len(data)))
        if not index.pes or not index.pes[0].keyframe:
            raise MediaToolError(f"{rendition.name}/{entry.uri} does not start with a keyframe")
        if codec is None and index.sps:
            codec = avc_codec_string(index.sps)
        for position, pes in enumerate(index.pes):
            if first_pts is None and pes.pts is not None:
                first_pts = pes.pts
            if pes.keyframe and pes.pts is not None:
                keyframes.append((entry.uri, pes.offset, index.end_of(position) - pes.offset, pes.pts))
    if not segments or codec is None or first_pts is None:
        raise MediaToolError(f"{rendition.name}: ffmpeg produced no playable video")
    end_pts = first_pts + sum(s.duration for s in segments) * PTS_HZ
    iframes = [
        IFrame(uri=uri, offset=offset, length=length,
               duration=round(((keyframes[i + 1][3] if i + 1 < len(keyframes) else end_pts) - pts) / PTS_HZ, 6))
        for i, (uri, offset, length, pts) in enumerate(keyframes)
    ]
    codecs = f"{codec},{AAC_LC}" if rendition.audio_kbps else codec
    return MeasuredRendition(name=rendition.name, width=rendition.width, height=rendition.height,
                             frame_rate=rendition.fps, codecs=codecs, video_codec=codec,
                             segments=segments, iframes=iframes)


def check_complete(decoded: float, duration: float) -> None:
    """Refuse an encode that is shorter than its source: the upload is truncated or corrupt."""
    if duration - decoded > max(1.0, 0.02 * duration):
        raise BadInput(errors.UNREADABLE, f"Only {decoded:.1f} s of the {duration:.1f} s video could be decoded; "
                       "the file is truncated (an interrupted upload?) or corrupt.")


def _free_bytes(path: str) -> int:
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


def _raise_if_disk_full(out_dir: str) -> None:
    if _free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES:
        raise MediaToolError(f"the scratch disk is full at {out_dir} (No space left on device)")


def encode_renditions(src: str, out_root: str, source: SourceInfo, renditions: list[Rendition],
                      settings: EncoderSettings, on_progress: Callable[[float], None] | None = None,
                      extra_outputs: ExtraOutputs | None = None) -> list[MeasuredRendition]:
    """Every rendition from one decode of the source (into ``out_root/<name>/``), each measured."""
    outputs = [(os.path.join(out_root, r.name), r) for r in renditions]
    for out_dir, _ in outputs:
        os.makedirs(out_dir, exist_ok=True)
    args = build_multi_encode_command(src, out_root, source, renditions, settings, extra_outputs)
    return _run_and_measure(args, src, out_root, source, outputs, settings, on_progress)


def encode_rendition(src: str, out_dir: str, source: SourceInfo, rendition: Rendition,
                     settings: EncoderSettings, on_progress: Callable[[float], None] | None = None
                     ) -> MeasuredRendition:
    """One rendition into ``out_dir``, in a process of its own (the benches compare the two shapes)."""
    os.makedirs(out_dir, exist_ok=True)
    args = build_encode_command(src, out_dir, source, rendition, settings)
    return _run_and_measure(args, src, out_dir, source, [(out_dir, rendition)], settings, on_progress)[0]


def _run_and_measure(args: list[str], src: str, scratch: str, source: SourceInfo,
                     outputs: list[tuple[str, Rendition]], settings: EncoderSettings,
                     on_progress: Callable[[float], None] | None) -> list[MeasuredRendition]:
    result = run_ffmpeg(args, duration=source.duration,
                        timeout=settings.timeout_for(source.duration * len(outputs)),
                        on_progress=on_progress, redact=src if "://" in src else None)
    if result.returncode != 0:
        raise classify_failure(result, scratch)
    names = ", ".join(r.name for _, r in outputs)
    if result.stderr_tail.strip():
        log.warning("ffmpeg warnings for %s:\n%s", names, result.stderr_tail.strip()[-2000:])
    # ffmpeg may exit 0 after failed writes: short or broken output on a full disk is the machine's fault.
    try:
        measured = [measure_output(out_dir, r) for out_dir, r in outputs]
    except MediaToolError:
        _raise_if_disk_full(scratch)
        raise
    try:
        check_complete(min(m.duration for m in measured), source.duration)
    except BadInput:
        _raise_if_disk_full(scratch)  # a short output on a full disk is the machine's fault
        raise
    log.info("%s: %d segments, %.1f s, %.1f MB in %.1f s", names, len(measured[0].segments),
             measured[0].duration, sum(m.bytes for m in measured) / 1e6, result.elapsed)
    return measured
