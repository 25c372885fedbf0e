"""Chunked encoding of long sources: cut the work into time chunks, encode them anywhere, join once.

Shape (decode once): one job per chunk decodes that stretch of the source once and encodes every rendition's
video from it; one job encodes the whole audio once per audio bitrate; then, per rendition, the join
concatenates its chunks (stream copy) and muxes the audio into one continuous HLS rendition. The other codecs'
renditions (AV1, HEVC: ``multicodec``) are encoded in the same chunk commands as fragmented MP4 pieces, with
their keyframes on the same frames; ``package.cmaf.join_pieces`` concatenates a rendition's pieces, placing each
by its first frame on the grid, and ``package.cmaf.codec_track`` cuts it on the H.264 segment grid.

Why the seams are invisible:
- chunks start on multiples of the segment length (6 s, itself a multiple of the 2 s keyframe grid), so every
  chunk starts with an IDR on the same grid as an unchunked encode, and every segment lies within one chunk;
- each chunk is cut by frame count (``frames``) after the constant-rate ``fps`` filter, and its timestamps are
  shifted to its place in the video (``output_ts_offset``), so the concatenated MPEG-TS has no gap, duplicate
  frame or timestamp jump;
- audio is never chunked: it is encoded in one pass (no AAC priming or MDCT restart at a seam: no click).
Each chunk's video is written as segments on that grid while it is encoded (``segmented``), so they can be played
before the chunk is done; a chunk's file for the join is their concatenation, the same MPEG-TS a single output
wrote. The audio item cuts one track the same way, from the same packets (the tee muxer).
Planning here is pure; the three commands are argument lists built with ffmpeg-python.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import (
    SEGMENT_PATTERN,
    STRIP_METADATA,
    as_vod_playlists,
    audio_codec_options,
    audio_track,
    ffmpeg_command,
    hls_muxer_options,
    keyframe_expression,
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
)
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.encode.renditions import alternate_audio_outputs, measure_output, subtitle_outputs
from vodflow.media.encode.segmented import (
    audio_cut_frames,
    concatenate,
    cut_frames,
    early_grid,
    tee_audio_outputs,
    video_segment_options,
)
from vodflow.media.encode.watermark import Watermark
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings
from vodflow.media.package.mpegts import PTS_HZ, index_segment
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS, source_input
from vodflow.media.source.tracks import AlternateAudio

log = logging.getLogger(__name__)
TS_BASE = 10.0  # seconds added to every chunk's and the audio's timestamps (room for B-frame DTS before 0)
SEEK_PREROLL = 1  # whole seconds decoded before a chunk, so the fps filter and the deinterlacer see its past


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # seconds into the output timeline (a multiple of the segment length)
    frames: int | None  # output frames in this chunk; None for the last one (to the end of the source)
    first_frame: int = 0  # the chunk's first frame on the output frame grid: the frames of the chunks before it

    @property
    def label(self) -> str:
        return f"chunk {self.index:02d}"


def plan_chunks(duration: float, fps: str, chunk_seconds: float, segment_seconds: int = 6) -> list[Chunk]:
    """Chunks of about ``chunk_seconds`` on the segment grid; a short tail joins the chunk before it.

    A chunk starting at ``start`` s begins with the first output frame at or after it (frame
    ``ceil(start × fps)`` of the output grid, exactly, in rational arithmetic): at 29.97 fps a 30 s chunk holds
    899 or 900 frames, so consecutive chunks partition the grid with no frame lost or doubled at a seam.
    """
    step = max(segment_seconds, round(chunk_seconds / segment_seconds) * segment_seconds)
    count = max(1, math.floor(duration / step))
    if duration - count * step > step / 2:
        count += 1  # a tail longer than half a chunk is a chunk of its own
    rate = Fraction(fps)
    firsts = [math.ceil(i * step * rate) for i in range(count + 1)]
    return [Chunk(index=i, start=float(i * step), frames=None if i == count - 1 else firsts[i + 1] - firsts[i],
                  first_frame=firsts[i])
            for i in range(count)]


def seek_preroll(source: SourceInfo) -> int:
    """Whole seconds a chunk's read starts before the chunk: ``SEEK_PREROLL`` for the filters, plus, where a seek
    lands on any packet rather than on a keyframe (MPEG-TS/PS: ``keyframe_interval``), the source's longest
    keyframe interval, so the decoder meets a keyframe before the chunk's first frame. Indexed containers (MP4,
    MKV) seek to a keyframe at or before the time asked. A still picture or slideshow is read from its start: its
    last picture may lie long before the chunk, and its few pictures cost nothing to decode."""
    if source.still:
        return math.ceil(source.duration) + SEEK_PREROLL
    return SEEK_PREROLL + math.ceil(source.keyframe_interval or 0)


def chunk_file(work_dir: str, chunk: Chunk, rendition: str) -> str:
    """A rendition's chunk for the join: its segments (``chunk_segments``) concatenated."""
    return os.path.join(work_dir, f"{rendition}.c{chunk.index:03d}.ts")


def chunk_segments(work_dir: str, chunk: Chunk, rendition: str) -> str:
    """The folder of a rendition's segments in this chunk, ``seg_<global seq>.ts``, written as it is encoded."""
    return os.path.join(work_dir, f"{rendition}.c{chunk.index:03d}")


def audio_segments(work_dir: str) -> str:
    """The folder of the early audio track's segments (``seg_<seq>.ts`` from 0), written as it is encoded."""
    return os.path.join(work_dir, "audio-segments")


def chunk_track_file(work_dir: str, chunk: Chunk, rendition: str) -> str:
    """An other-codec rendition's piece: a fragmented MP4 (``multicodec``), joined by ``cmaf.join_pieces``."""
    return os.path.join(work_dir, f"{rendition}.c{chunk.index:03d}.mp4")


def audio_file(work_dir: str, kbps: int) -> str:
    return os.path.join(work_dir, f"audio-{kbps}k.ts")


def build_chunk_command(src: str, work_dir: str, source: SourceInfo, chunk: Chunk, renditions: list[Rendition],
                        settings: EncoderSettings, extra_outputs: ExtraOutputs | None = None,
                        cmaf_renditions: list[Rendition] | None = None, marks: tuple[Watermark, ...] = ()
                        ) -> list[str]:
    """Decode one chunk of the source once; encode every rendition's video (no audio) into MPEG-TS segments on
    the grid (``chunk_segments``; ``segmented``), and the other codecs' renditions (``cmaf_renditions``) into
    fragmented MP4 pieces (``chunk_track_file``).

    The chunk keeps the whole video's timeline: the input is read from ``seek_preroll`` s before the chunk, with
    its timestamps as they are (``-copyts``) less the container's start (``setpts``), so every frame has the same
    timestamp, and the ``fps`` filter picks the same source frame for each output slot, as in an encode of the
    whole video; ``trim`` then keeps exactly the chunk's frames of that grid. A source whose video starts after
    its audio keeps that offset, because nothing here moves a chunk to zero: left to itself, ffmpeg moves the
    start of an MPEG-TS/PS read without a seek to its first *used* stream ("Correcting start time"), so the first
    chunk of a broadcast TS whose audio leads by 0.3 s came out 0.3 s early against the audio.
    ``extra_outputs`` may add outputs fed from the same decoded picture (the pictures in this chunk); ``marks``,
    watermarks on every rendition, placed by the rendition's size alone: the same pixels in every chunk."""
    cmaf_renditions = cmaf_renditions or []
    fps = renditions[0].fps
    seek = max(0, math.floor(chunk.start) - seek_preroll(source))
    stream = source_input(src, ss=str(seek)) if seek else source_input(src)
    video = stream["v:0"].filter("setpts", f"PTS-{source.start_time:.6f}/TB")  # read with -copyts: see above
    window = {"start_pts": chunk.first_frame}
    if chunk.frames is not None:
        window["end_pts"] = chunk.first_frame + chunk.frames
    # pts = output frame number; trim keeps the chunk's frames
    branches, cmaf_branches, outputs = picture_branches(video, source, fps, len(renditions), cmaf_renditions,
                                                        extra_outputs, from_zero=not seek, window=window)
    overlays = overlays_for(marks, source, [*renditions, *cmaf_renditions])
    grid = early_grid(settings)
    seq = grid.seq_at(chunk.start)
    end = (chunk.first_frame + chunk.frames if chunk.frames is not None
           else math.ceil(max(source.picture_end, source.duration) * Fraction(fps)) + 1)
    cuts = cut_frames(chunk.first_frame, end, seq, fps, grid)
    for i, rendition in enumerate(renditions):
        # Every chunk shifted by the same base: with B-frames the first DTS is before the first PTS, and a muxer
        # that shifts a negative DTS (the first chunk's) would move only that chunk.
        folder = chunk_segments(work_dir, chunk, rendition.name)
        options = {**video_codec_options(rendition, settings, first_frame=chunk.first_frame), **STRIP_METADATA,
                   "an": None, **video_segment_options(folder, seq, cuts), "output_ts_offset": f"{TS_BASE:.6f}",
                   "muxdelay": 0, "muxpreload": 0}
        picture = overlays.on(scaled(branches[i], rendition), rendition.width, rendition.height)
        outputs.append(picture.output(os.path.join(folder, SEGMENT_PATTERN), **options))
    keyframes = keyframe_expression(fps, settings, chunk.first_frame)
    outputs += [cmaf_output(branch, r, source, settings, keyframes, chunk_track_file(work_dir, chunk, r.name),
                            overlays)
                for branch, r in zip(cmaf_branches, cmaf_renditions, strict=True)]
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs), "-copyts", binary=binary_for(cmaf_renditions))


def build_audio_command(src: str, work_dir: str, source: SourceInfo, bitrates: list[int],
                        alternates: list[AlternateAudio] | None = None, settings: EncoderSettings | None = None,
                        subtitles: bool = False, audio_gains: Gains | None = None, segmented_kbps: int = 0
                        ) -> list[str]:
    """The whole audio track, encoded once per AAC bitrate (decoded once), on the video's timeline: MPEG-TS
    shifted by the same ``TS_BASE`` as the chunks, so the join lays both side by side as they were in the
    source. ``segmented_kbps``: that bitrate's packets are also written as audio-only segments on the grid
    (``audio_segments``), as they are encoded, through the tee muxer: one encode for both. Read like the chunks,
    with ``-copyts`` less the container's start: read alone, the audio of an MPEG-TS whose video starts first
    would otherwise be moved to its own start (ffmpeg's "Correcting start time").
    ``audio_gains``: loudness normalisation, one gain per track for the whole of it (never per chunk)."""
    stream = source_input(src)
    origin = source.start_time
    gains = audio_gains or {}
    branches = (audio_track(stream, source, origin=origin, gain=gains.get(source.audio_index))
                .filter_multi_output("asplit", len(bitrates)) if bitrates else None)
    cuts = audio_cut_frames(source.picture_end, early_grid(settings or EncoderSettings()))

    def muxer(kbps: int) -> dict[str, object]:
        if kbps != segmented_kbps:
            return {"filename": audio_file(work_dir, kbps), "f": "mpegts"}
        return {"filename": tee_audio_outputs(audio_file(work_dir, kbps), audio_segments(work_dir), cuts), "f": "tee"}

    outputs = [branches.stream(i).output(**muxer(kbps), **audio_codec_options(kbps), **STRIP_METADATA,
                                         vn=None, output_ts_offset=f"{TS_BASE:.6f}", muxdelay=0, muxpreload=0)
               for i, kbps in enumerate(bitrates) if branches is not None]
    # The other audio tracks: audio-only HLS renditions, as an unchunked encode makes them (``work_dir/hls``).
    outputs += alternate_audio_outputs(stream, source, os.path.join(work_dir, "hls"), alternates or [],
                                       settings or EncoderSettings(), origin, gains)
    if subtitles:  # this task reads the whole source: the text subtitle tracks come from here too
        outputs += subtitle_outputs(stream, work_dir, list(source.subtitle_tracks), origin)
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs), "-copyts")


def build_join_command(parts: list[str], audio: str | None, out_dir: str, rendition: Rendition,
                       settings: EncoderSettings) -> list[str]:
    """Concatenate a rendition's chunks and mux the audio, copying both, with their timestamps as they are
    (``copyts``): ffmpeg would otherwise move each input to zero on its own, and a source whose audio starts
    before its video would lose that offset."""
    video = ffmpeg.input("concat:" + "|".join(parts), protocol_whitelist="concat,file", f="mpegts")
    streams = [video["v:0"]]
    if audio:
        streams.append(ffmpeg.input(audio, protocol_whitelist=FILE_PROTOCOLS, f="mpegts")["a:0"])
    output = ffmpeg.output(*streams, os.path.join(out_dir, "index.m3u8"), c="copy", **STRIP_METADATA,
                           **hls_muxer_options(settings, out_dir))
    return ffmpeg_command(output, "-copyts")


def encode_chunk(src: str, work_dir: str, source: SourceInfo, chunk: Chunk, renditions: list[Rendition],
                 settings: EncoderSettings, on_progress: Any = None,
                 extra_outputs: ExtraOutputs | None = None,
                 cmaf_renditions: list[Rendition] | None = None, marks: tuple[Watermark, ...] = (),
                 niceness: int = 0) -> dict[str, str]:
    """Encode one chunk for every rendition (and every other-codec one); returns rendition name → file (a
    rendition's segments concatenated; the segments stay in ``chunk_segments``). ``niceness``: see
    ``run_ffmpeg``."""
    cmaf_renditions = cmaf_renditions or []
    for rendition in renditions:
        os.makedirs(chunk_segments(work_dir, chunk, rendition.name), exist_ok=True)
    seconds = (chunk.frames / float(Fraction(renditions[0].fps)) if chunk.frames is not None
               else max(source.duration - chunk.start, 1.0))
    count = len(renditions) + len(cmaf_renditions)
    result = run_ffmpeg(build_chunk_command(src, work_dir, source, chunk, renditions, settings, extra_outputs,
                                            cmaf_renditions, marks),
                        duration=seconds,
                        timeout=settings.timeout_for(seconds * count), on_progress=on_progress,
                        redact=src if "://" in src else None, niceness=niceness)
    if result.returncode != 0:
        raise classify_failure(result, work_dir)
    log.info("%s: %s in %.1f s", chunk.label, ", ".join(r.name for r in [*renditions, *cmaf_renditions]),
             result.elapsed)
    files = {r.name: concatenate(chunk_segments(work_dir, chunk, r.name), chunk_file(work_dir, chunk, r.name))
             for r in renditions}
    check_chunk_complete(files[renditions[0].name], source, chunk, renditions[0].fps, settings)
    tracks = {r.name: chunk_track_file(work_dir, chunk, r.name) for r in cmaf_renditions}
    finish_tracks(tracks, cmaf_renditions, source)
    return {**files, **tracks}


def check_chunk_complete(path: str, source: SourceInfo, chunk: Chunk, fps: str, settings: EncoderSettings) -> None:
    """A chunk short of frames was read from a truncated (or cut-off) source: say so here, where the task can
    still confirm it from a downloaded copy, not only in the join. A chunk before the last must hold exactly
    its frames; the last may end up to one segment early (like ``check_complete``).

    A truncated source loses a chunk's last frames, never its first: a chunk that starts late was read from a
    seek that missed its start (our fault, retried as such), not from a bad file."""
    index = index_segment(Path(path).read_bytes()) if os.path.getsize(path) else None
    made = len(index.pes) if index else 0
    rate = Fraction(fps)
    expected = chunk.frames if chunk.frames is not None else math.floor(source.picture_end * rate) - chunk.first_frame
    tolerance = 0 if chunk.frames is not None else min(max(1.0, 0.02 * source.picture_end),
                                                       settings.segment_seconds) * rate
    if expected - made <= tolerance:
        return
    starts = [pes.pts for pes in index.pes if pes.pts is not None] if index else []
    late = (min(starts) / PTS_HZ - TS_BASE - float(chunk.first_frame / rate)) if starts else 0.0
    if late >= float(1 / rate) / 2:
        raise MediaToolError(f"{chunk.label} has {made} of its {expected} frames: it starts {late:.3f} s late, the "
                             "read into the source began after a keyframe it needed")
    raise BadInput(errors.UNREADABLE, f"{chunk.label} has {made} of its {expected} frames: the file is truncated "
                   "(an interrupted upload?) or corrupt.")


def encode_audio(src: str, work_dir: str, source: SourceInfo, bitrates: list[int],
                 settings: EncoderSettings, alternates: list[AlternateAudio] | None = None,
                 subtitles: bool = False, audio_gains: Gains | None = None, segmented_kbps: int = 0
                 ) -> dict[int, str]:
    """The main track once per bitrate (for the join), and the alternate tracks' HLS renditions in
    ``work_dir/hls/audio/<name>/``; ``segmented_kbps``: see ``build_audio_command``."""
    os.makedirs(work_dir, exist_ok=True)
    if segmented_kbps in bitrates:
        os.makedirs(audio_segments(work_dir), exist_ok=True)
    result = run_ffmpeg(build_audio_command(src, work_dir, source, bitrates, alternates, settings, subtitles,
                                            audio_gains, segmented_kbps),
                        duration=source.duration,
                        timeout=settings.timeout_for(source.duration), redact=src if "://" in src else None)
    if result.returncode != 0:
        raise classify_failure(result, work_dir)
    log.info("audio %s in %.1f s", ", ".join(f"{k}k" for k in bitrates), result.elapsed)
    return {kbps: audio_file(work_dir, kbps) for kbps in bitrates}


def join_rendition(parts: list[str], audio: str | None, out_dir: str, rendition: Rendition,
                   settings: EncoderSettings) -> MeasuredRendition:
    """One continuous HLS rendition from its chunks, segmented on the keyframe grid; measured like any other."""
    os.makedirs(out_dir, exist_ok=True)
    result = run_ffmpeg(build_join_command(parts, audio, out_dir, rendition, settings), timeout=600.0)
    if result.returncode != 0:
        raise classify_failure(result, out_dir)
    as_vod_playlists(out_dir)
    return measure_output(out_dir, rendition)
