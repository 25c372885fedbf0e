"""The ffmpeg command vocabulary the encodes share: the picture every output starts from, codec options apart
from muxer options, the command line.

Encoding (``renditions``), chunking (``chunks``), pictures and the per-title trials all build on these, so an
option is defined once. How a source is opened is ``source.inputs``; why a run failed, ``diagnose``.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import ffmpeg

from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.loudness import AudioGain, applied
from vodflow.media.options import EncoderSettings
from vodflow.media.source.info import SourceInfo

SEGMENT_PATTERN = "seg_%05d.ts"


def segment_name(seq: int) -> str:
    """A TS segment's file name (and its key's last part): what ``SEGMENT_PATTERN`` makes ffmpeg write."""
    return SEGMENT_PATTERN % seq

# HDR (PQ/HLG) to SDR BT.709: linearise, tone-map, back to BT.709 limited range. The last zscale itself makes
# the YUV (its BT.709 matrix, dithered to 8 bits): left in RGB, the picture was turned into YUV by the scale filter
# with swscale's default BT.601 matrix, and the encoder got no matrix to write. So the frames carry BT.709
# primaries, transfer and matrix, and ffmpeg writes all three into the stream. The source's mastering display and
# content light level describe the HDR picture, not this one: ffmpeg 9 copies a first frame's side data into the
# output (MP4 ``mdcv``/``clli`` boxes on an SDR H.264 rendition), so they are deleted here (ffmpeg 5.1 never
# wrote them: its output is byte-identical with or without the deletes).
TONEMAP_CHAIN = [
    ("zscale", {"t": "linear", "npl": 100}),
    ("format", {"pix_fmts": "gbrpf32le"}),
    ("zscale", {"p": "bt709"}),
    ("tonemap", {"tonemap": "hable", "desat": 0}),
    ("zscale", {"t": "bt709", "m": "bt709", "r": "tv", "d": "error_diffusion"}),
    ("format", {"pix_fmts": "yuv420p"}),
    ("sidedata", {"mode": "delete", "type": "MASTERING_DISPLAY_METADATA"}),
    ("sidedata", {"mode": "delete", "type": "CONTENT_LIGHT_LEVEL"}),
]


def ffmpeg_command(output: ffmpeg.nodes.OutputStream, *global_options: str, binary: str = "ffmpeg") -> list[str]:
    """The argument list; ``global_options`` (e.g. ``-copyts``) go before the inputs, where ffmpeg reads them.
    ``binary``: ``codecs.ffmpeg_for`` the run's codecs (the system's ffmpeg for H.264 alone)."""
    return [binary, "-hide_banner", "-nostdin", "-y", "-loglevel", "warning", *global_options, *output.get_args()]


def normalize_picture(video: ffmpeg.nodes.FilterableStream, source: SourceInfo, tonemap: bool = True
                      ) -> ffmpeg.nodes.FilterableStream:
    """Progressive SDR pictures from any source: deinterlace, tone-map HDR to BT.709; a still picture (or a
    slideshow) shown at the output rate, its last picture held until the sound ends (``source.picture_end``).
    ``tonemap=False``: HDR stays HDR (what ``hdr.hdr_picture`` and ``hdr.split_dynamic_range`` start from)."""
    hold = source.picture_end - (source.video_end or source.picture_end) if source.still else 0.0
    if hold > 0:  # at the output rate first, so the held picture is repeated at that rate
        video = video.filter("fps", fps=source.fps).filter("tpad", stop_mode="clone", stop_duration=f"{hold:.6f}")
    if source.interlaced:
        video = video.filter("bwdif", mode="send_frame")
    return tone_mapped(video) if source.hdr and tonemap else video


def tone_mapped(video: ffmpeg.nodes.FilterableStream) -> ffmpeg.nodes.FilterableStream:
    """An HDR picture as SDR BT.709 (``TONEMAP_CHAIN``)."""
    for name, options in TONEMAP_CHAIN:
        video = video.filter(name, **options)
    return video


def output_grid(video: ffmpeg.nodes.FilterableStream, fps: str, *, from_zero: bool = True
                ) -> ffmpeg.nodes.FilterableStream:
    """The constant-rate output picture: frame n at n / fps on the source's timeline (time base 1/fps, so a
    frame's pts is its number). ``from_zero``: a video that starts after its audio gets its first picture held
    from 0, so the video and the frame grid start where the timeline does, in every command shape."""
    return video.filter("fps", fps=fps, start_time=0) if from_zero else video.filter("fps", fps=fps)


def scaled(video: ffmpeg.nodes.FilterableStream, rendition: Rendition, pix_fmt: str = "yuv420p"
           ) -> ffmpeg.nodes.FilterableStream:
    """``pix_fmt``: an HDR rendition's is ``yuv420p10le`` (``hdr.color_options(...).pix_fmt``): a YUV-to-YUV
    scale, so its BT.2020 colours are kept as they are."""
    return (video.filter("scale", rendition.width, rendition.height, flags="lanczos")
            .filter("setsar", 1).filter("format", pix_fmt))


def video_codec_options(rendition: Rendition, settings: EncoderSettings, first_frame: int = 0) -> dict[str, object]:
    """libx264 for one rendition: the same in every command shape (whole video, chunk), so outputs match.

    ``first_frame``: the encode's first frame on the video's output grid (a chunk's), so a chunk forces its IDRs
    on the same frames as an encode of the whole video: the first frame at or after every ``keyframe_seconds``.
    Counted in frames (``n``), not ``t``: what ``t`` starts from after a seek differs between ffmpeg versions."""
    options: dict[str, object] = {
        "c:v": "libx264",
        "preset": settings.preset,
        "profile:v": "high",
        "b:v": f"{rendition.video_kbps}k",
        "maxrate": f"{rendition.maxrate_kbps}k",
        "bufsize": f"{rendition.bufsize_kbits}k",
        "force_key_frames": keyframe_expression(rendition.fps, settings, first_frame),
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


def keyframe_expression(fps: str, settings: EncoderSettings, first_frame: int = 0) -> str:
    """``force_key_frames`` for every codec of a command: the first frame at or after every ``keyframe_seconds``
    on the output timeline; in a chunk (``first_frame``: its first frame on the grid), the same frames by number."""
    period = settings.keyframe_seconds
    if not first_frame:
        return f"expr:gte(t,n_forced*{period})"
    rate = Fraction(fps)
    second = f"*{rate.denominator}/({period}*{rate.numerator})"  # frame number → keyframe period number
    return f"expr:eq(n,0)+gt(floor((n+{first_frame}){second}),floor((n+{first_frame - 1}){second}))"


def audio_codec_options(kbps: int) -> dict[str, object]:
    """AAC-LC 48 kHz stereo (Apple HLS 2.9)."""
    return {"c:a": "aac", "b:a": f"{kbps}k", "ar": 48000, "ac": 2}


def audio_track(stream: ffmpeg.nodes.FilterableStream, source: SourceInfo, index: int | None = None,
                origin: float | None = None, gain: AudioGain | None = None) -> ffmpeg.nodes.FilterableStream:
    """The main audio track, continuous and exactly as long as the video: ``aresample`` fills gaps and drops
    overlaps from broken timestamps and starts it at 0 (silence before a late start), ``apad`` adds silence after
    an early end, ``atrim`` cuts what runs past the picture. So every segment carries audio for its whole length.
    ``index``: which audio stream (``a:N``); by default the main track (the one the source flags default).
    ``origin``: in a command that reads the source with ``-copyts``, the container's start, subtracted here.
    ``gain``: loudness normalisation (``loudness.decide``), one gain for the whole track; None: as it is.
    """
    end = f"{source.picture_end:.6f}"
    track = stream[f"a:{source.audio_index if index is None else index}"]
    if origin is not None:
        track = track.filter("asetpts", f"PTS-{origin:.6f}/TB")
    return applied(track.filter("aresample", **{"async": 1, "first_pts": 0})
                   .filter("apad", whole_dur=end).filter("atrim", end=end), gain)


# Drop user metadata (GPS position, device, titles) and chapters from every published file.
STRIP_METADATA: dict[str, object] = {"map_metadata": -1, "map_chapters": -1}


def hls_muxer_options(settings: EncoderSettings, out_dir: str) -> dict[str, object]:
    """HLS with MPEG-TS segments cut on the keyframe grid (the published playlists are rewritten from
    measurements). An ``event`` playlist, rewritten after each segment, and ``temp_file`` (a segment appears under
    its name once complete): early playback takes each segment as ffmpeg closes it (``pipeline.early.watcher``)."""
    return {
        "f": "hls",
        "hls_time": settings.segment_seconds,
        "hls_playlist_type": "event",
        "hls_segment_type": "mpegts",
        "hls_list_size": 0,
        "hls_flags": "independent_segments+temp_file",
        "hls_segment_filename": os.path.join(out_dir, SEGMENT_PATTERN),
    }


def as_vod_playlists(folder: str) -> None:
    """Once ffmpeg has exited well: the ``event`` playlists it wrote under ``folder`` (``hls_muxer_options``) say
    VOD, as they did before early playback. They are complete (ENDLIST); a newer ffmpeg's HLS demuxer (the VMAF
    build's) reads a finished EVENT playlist differently: its frames no longer lined up with the source's."""
    for root, _, files in os.walk(folder):
        for name in files:
            if not name.endswith(".m3u8"):
                continue
            path = os.path.join(root, name)
            with open(path) as f:
                text = f.read()
            if "#EXT-X-PLAYLIST-TYPE:EVENT\n" in text and "#EXT-X-ENDLIST" in text:
                with open(path, "w") as f:
                    f.write(text.replace("#EXT-X-PLAYLIST-TYPE:EVENT\n", "#EXT-X-PLAYLIST-TYPE:VOD\n", 1))
