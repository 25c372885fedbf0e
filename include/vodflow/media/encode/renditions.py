"""Encode one rendition to HLS with ffmpeg, then measure what was written.

Every rendition of a video is encoded with the same rules so the variants switch cleanly: a constant output
frame rate, an IDR keyframe forced every 2 s on the output timeline (scene-cut off, closed GOPs), 6 s MPEG-TS
segments cut on those keyframes. Commands are built with ffmpeg-python and run as argument lists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import ffmpeg
import m3u8

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError
from vodflow.media.encode.diagnose import classify_failure, raise_if_disk_full
from vodflow.media.encode.ffmpeg import (
    STRIP_METADATA,
    as_vod_playlists,
    audio_codec_options,
    audio_track,
    ffmpeg_command,
    hls_muxer_options,
    keyframe_expression,
    normalize_picture,
    output_grid,
    scaled,
    video_codec_options,
)
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.loudness import Gains
from vodflow.media.encode.multicodec import (
    ExtraOutputs,
    binary_for,
    cmaf_output,
    finish_tracks,
    overlays_for,
    picture_branches,
    track_path,
)
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.encode.segmented import (
    OUTPUT_MUX_DELAY,
    discard_after_lead_in,
    early_grid,
    lead_in_cuts,
    lead_in_options,
    tee_safe,
)
from vodflow.media.encode.watermark import Watermark
from vodflow.media.measured import IFrame, MeasuredAudio, MeasuredRendition, Segment
from vodflow.media.options import EncoderSettings
from vodflow.media.package.mpegts import PTS_HZ, avc_codec_string, index_segment
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import source_input
from vodflow.media.source.tracks import ALTERNATE_AUDIO_KBPS, AlternateAudio, SubtitleTrack, main_track

log = logging.getLogger(__name__)

AAC_LC = "mp4a.40.2"


def output_options(rendition: Rendition, settings: EncoderSettings, out_dir: str) -> dict[str, object]:
    """One HLS rendition's output: its codecs, no user metadata, the HLS muxer."""
    return {**codec_options(rendition, settings), **hls_muxer_options(settings, out_dir)}


def codec_options(rendition: Rendition, settings: EncoderSettings) -> dict[str, object]:
    """One rendition's encoders (and no user metadata): what its output has whatever muxes it."""
    options = {**video_codec_options(rendition, settings), **STRIP_METADATA}
    if rendition.audio_kbps:
        options.update(audio_codec_options(rendition.audio_kbps))
    return options


def hls_output(streams: list[ffmpeg.nodes.FilterableStream], rendition: Rendition, settings: EncoderSettings,
               out_dir: str, lead_dir: str | None = None) -> ffmpeg.nodes.OutputStream:
    """One HLS rendition into ``out_dir``; with ``lead_dir``, the same packets also cut into the early grid's
    lead-in pieces there (``segmented.lead_in_options``), through the tee muxer: one encode for both."""
    playlist = os.path.join(out_dir, "index.m3u8")
    if lead_dir is None:
        return ffmpeg.output(*streams, playlist, **output_options(rendition, settings, out_dir))
    muxer = {k: v for k, v in hls_muxer_options(settings, out_dir).items() if k != "f"}
    hls = ":".join(f"{k}={tee_safe(str(v))}" for k, v in muxer.items())
    lead = lead_in_options(lead_dir, lead_in_cuts(rendition.fps, early_grid(settings)))
    return ffmpeg.output(*streams, f"[f=hls:{OUTPUT_MUX_DELAY}:{hls}]{tee_safe(playlist)}|{lead}", f="tee",
                         **codec_options(rendition, settings))


def build_encode_command(src: str, out_dir: str, source: SourceInfo, rendition: Rendition,
                         settings: EncoderSettings) -> list[str]:
    """The ffmpeg argument list for one rendition. ``src`` is a path or URL we made, never user input."""
    stream = source_input(src)
    video = scaled(output_grid(normalize_picture(stream["v:0"], source), rendition.fps), rendition)
    outputs = [video]
    if rendition.audio_kbps:
        outputs.append(audio_track(stream, source))
    return ffmpeg_command(ffmpeg.output(*outputs, os.path.join(out_dir, "index.m3u8"),
                                  **output_options(rendition, settings, out_dir)))


def alternate_audio_outputs(stream: ffmpeg.nodes.FilterableStream, source: SourceInfo, out_root: str,
                            alternates: list[AlternateAudio], settings: EncoderSettings, origin: float | None = None,
                            gains: Gains | None = None) -> list[ffmpeg.nodes.OutputStream]:
    """Each alternate audio track as an audio-only HLS rendition in ``out_root/audio/<name>/``: AAC like the main
    track, padded or cut to the picture like it, segmented on the same target duration (``origin``: see
    ``audio_track``), its loudness normalised by its own gain in ``gains`` if it has one."""
    outputs = []
    for alternate in alternates:
        out_dir = os.path.join(out_root, "audio", alternate.name)
        os.makedirs(out_dir, exist_ok=True)
        gain = (gains or {}).get(alternate.track.index)
        outputs.append(audio_track(stream, source, alternate.track.index, origin, gain).output(
            os.path.join(out_dir, "index.m3u8"), **audio_codec_options(ALTERNATE_AUDIO_KBPS), **STRIP_METADATA,
            **hls_muxer_options(settings, out_dir), vn=None))
    return outputs


def measure_audio(out_root: str, alternate: AlternateAudio) -> MeasuredAudio:
    """An alternate audio rendition as written: its segments' durations and sizes."""
    out_dir = os.path.join(out_root, "audio", alternate.name)
    playlist = m3u8.load(os.path.join(out_dir, "index.m3u8"))
    segments = [Segment(uri=e.uri, duration=float(e.duration), size=Path(out_dir, e.uri).stat().st_size)
                for e in playlist.segments]
    if not segments:
        raise MediaToolError(f"audio/{alternate.name}: ffmpeg produced no audio")
    return MeasuredAudio(name=alternate.name, language=alternate.track.language, title=alternate.track.title,
                         segments=segments)


def audio_group_of(source: SourceInfo, measured: list[MeasuredAudio]) -> tuple[MeasuredAudio, ...]:
    """The audio group: the main track (in the variants) and the measured alternates; empty without alternates."""
    main = main_track(source.audio_tracks)
    if not measured or main is None:
        return ()
    return (MeasuredAudio(name="main", language=main.language, title=main.title), *measured)


def subtitle_outputs(stream: ffmpeg.nodes.FilterableStream, out_dir: str, tracks: list[SubtitleTrack],
                     origin: float | None = None) -> list[ffmpeg.nodes.OutputStream]:
    """Each text subtitle track converted to one WebVTT file (``subs-<index>.vtt``) on the video's timeline;
    ``subtitles`` segments them once the video's segments are known. ``origin``: in a command that reads the
    source with ``-copyts``, the container's start, taken off the cues' times."""
    shift = {"output_ts_offset": f"{-origin:.6f}"} if origin else {}
    return [stream[f"s:{t.index}"].output(os.path.join(out_dir, subtitle_file(t)), **{"c:s": "webvtt"}, f="webvtt",
                                          **shift)
            for t in tracks if t.text]


def subtitle_file(track: SubtitleTrack) -> str:
    return f"subs-{track.index}.vtt"


def build_multi_encode_command(src: str, out_root: str, source: SourceInfo, renditions: list[Rendition],
                               settings: EncoderSettings, extra_outputs: ExtraOutputs | None = None,
                               alternates: list[AlternateAudio] | None = None,
                               subtitles: tuple[str, list[SubtitleTrack]] | None = None,
                               cmaf_renditions: list[Rendition] | None = None, cmaf_root: str | None = None,
                               marks: tuple[Watermark, ...] = (), audio_gains: Gains | None = None,
                               lead_root: str | None = None) -> list[str]:
    """One ffmpeg that decodes the source once and encodes every rendition (into ``out_root/<name>/``).

    ``extra_outputs`` may add outputs fed from the same decoded picture (the poster and thumbnails);
    ``alternates``, the other audio tracks as audio-only renditions (``out_root/audio/<name>/``);
    ``cmaf_renditions``, the other codecs' renditions, each one fragmented MP4 (``multicodec.track_path`` under
    ``cmaf_root``, by default ``out_root``), from the same decode, with the ffmpeg that has their encoders;
    ``marks``, watermarks on every rendition of every codec (``watermark.overlaid``, after its scale);
    ``audio_gains``, the audio tracks' loudness normalisation (``loudness``: one gain per track, by ``a:N``);
    ``lead_root``, each rendition's early lead-in pieces too (``lead_root/<name>/``, ``hls_output``)."""
    cmaf_renditions = cmaf_renditions or []
    stream = source_input(src)
    fps = {r.fps for r in [*renditions, *cmaf_renditions]}
    if len(fps) != 1:
        raise ValueError("renditions decoded together must share a frame rate")
    rate = fps.pop()
    videos, cmaf_videos, outputs = picture_branches(stream["v:0"], source, rate, len(renditions), cmaf_renditions,
                                                    extra_outputs)
    overlays = overlays_for(marks, source, [*renditions, *cmaf_renditions])
    audio_renditions = [r for r in renditions if r.audio_kbps]
    gains = audio_gains or {}
    audios = (audio_track(stream, source, gain=gains.get(source.audio_index))
              .filter_multi_output("asplit", len(audio_renditions)) if audio_renditions else None)
    for i, rendition in enumerate(renditions):
        out_dir = os.path.join(out_root, rendition.name)
        streams = [overlays.on(scaled(videos[i], rendition), rendition.width, rendition.height)]
        if rendition.audio_kbps and audios is not None:
            streams.append(audios.stream(audio_renditions.index(rendition)))
        outputs.append(hls_output(streams, rendition, settings, out_dir,
                                  os.path.join(lead_root, rendition.name) if lead_root else None))
    keyframes = keyframe_expression(rate, settings)
    outputs += [cmaf_output(branch, r, source, settings, keyframes, track_path(cmaf_root or out_root, r.name),
                            overlays)
                for branch, r in zip(cmaf_videos, cmaf_renditions, strict=True)]
    outputs += alternate_audio_outputs(stream, source, out_root, alternates or [], settings, gains=gains)
    if subtitles:
        outputs += subtitle_outputs(stream, *subtitles)
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs), binary=binary_for(cmaf_renditions))


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
                             segments=segments, iframes=iframes, first_pts=first_pts)


def check_complete(decoded: float, duration: float, segment_seconds: float = 6.0) -> None:
    """Refuse an encode that is shorter than its source: the upload is truncated or corrupt.

    The tolerance is absolute: 2 % of a short video, never more than one segment (2 % of a 2 h upload would let
    a truncated one through 2 minutes short)."""
    if duration - decoded > min(max(1.0, 0.02 * duration), segment_seconds):
        raise BadInput(errors.UNREADABLE, f"Only {decoded:.1f} s of the {duration:.1f} s video could be decoded; "
                       "the file is truncated (an interrupted upload?) or corrupt.")


def encode_renditions(src: str, out_root: str, source: SourceInfo, renditions: list[Rendition],
                      settings: EncoderSettings, on_progress: Callable[[float], None] | None = None,
                      extra_outputs: ExtraOutputs | None = None,
                      alternates: list[AlternateAudio] | None = None,
                      subtitles: tuple[str, list[SubtitleTrack]] | None = None,
                      cmaf_renditions: list[Rendition] | None = None, cmaf_root: str | None = None,
                      marks: tuple[Watermark, ...] = (), audio_gains: Gains | None = None,
                      lead_root: str | None = None) -> list[MeasuredRendition]:
    """Every rendition from one decode of the source (into ``out_root/<name>/``), each measured; the alternate
    audio renditions too (``measure_audio`` reads them back); the other codecs' renditions as fragmented MP4s
    (``multicodec.track_path(cmaf_root or out_root, name)``, checked; ``package.cmaf.codec_track`` cuts them);
    with ``lead_root``, each rendition's lead-in pieces as it encodes (early playback: ``hls_output``)."""
    cmaf_renditions = cmaf_renditions or []
    outputs = [(os.path.join(out_root, r.name), r) for r in renditions]
    tracks = {r.name: track_path(cmaf_root or out_root, r.name) for r in cmaf_renditions}
    for out_dir in [o for o, _ in outputs] + [os.path.dirname(p) for p in tracks.values()]:
        os.makedirs(out_dir, exist_ok=True)
    if lead_root is not None:
        for r in renditions:
            discard_after_lead_in(os.path.join(lead_root, r.name), early_grid(settings).lead)
    args = build_multi_encode_command(src, out_root, source, renditions, settings, extra_outputs, alternates,
                                      subtitles, cmaf_renditions, cmaf_root, marks, audio_gains, lead_root)
    return _run_and_measure(args, src, out_root, source, outputs, settings, on_progress, tracks, cmaf_renditions)


def encode_rendition(src: str, out_dir: str, source: SourceInfo, rendition: Rendition,
                     settings: EncoderSettings, on_progress: Callable[[float], None] | None = None
                     ) -> MeasuredRendition:
    """One rendition into ``out_dir``, in a process of its own (the benches compare the two shapes)."""
    os.makedirs(out_dir, exist_ok=True)
    args = build_encode_command(src, out_dir, source, rendition, settings)
    return _run_and_measure(args, src, out_dir, source, [(out_dir, rendition)], settings, on_progress)[0]


def _run_and_measure(args: list[str], src: str, scratch: str, source: SourceInfo,
                     outputs: list[tuple[str, Rendition]], settings: EncoderSettings,
                     on_progress: Callable[[float], None] | None, tracks: dict[str, str] | None = None,
                     cmaf_renditions: list[Rendition] | None = None) -> list[MeasuredRendition]:
    tracks = tracks or {}
    result = run_ffmpeg(args, duration=source.duration,
                        timeout=settings.timeout_for(source.duration * (len(outputs) + len(tracks))),
                        on_progress=on_progress, redact=src if "://" in src else None)
    if result.returncode != 0:
        raise classify_failure(result, scratch)
    as_vod_playlists(scratch)
    names = ", ".join([*(r.name for _, r in outputs), *tracks])
    if result.stderr_tail.strip():
        log.warning("ffmpeg warnings for %s:\n%s", names, result.stderr_tail.strip()[-2000:])
    # ffmpeg may exit 0 after failed writes: short or broken output on a full disk is the machine's fault.
    try:
        measured = [measure_output(out_dir, r) for out_dir, r in outputs]
        finish_tracks(tracks, cmaf_renditions or [], source)
    except MediaToolError:
        raise_if_disk_full(scratch)
        raise
    try:
        check_complete(min(m.duration for m in measured), source.picture_end, settings.segment_seconds)
    except BadInput:
        raise_if_disk_full(scratch)  # a short output on a full disk is the machine's fault
        raise
    log.info("%s: %d segments, %.1f s, %.1f MB in %.1f s", names, len(measured[0].segments),
             measured[0].duration, sum(m.bytes for m in measured) / 1e6, result.elapsed)
    return measured
