"""CMAF tracks (fragmented MP4) from a rendition's own MPEG-TS segments: a stream-copy remux, never a second
encode. One set of files (an init segment and ``seg_NNNNN.m4s`` per track) serves both the fMP4 HLS playlists and
the DASH MPD.

- Video: ffmpeg's mp4 muxer writes one fragment per keyframe (every 2 s, so an I-frame playlist can address each
  IDR by byte range), on the TS timestamps exactly (``frag_discont`` without an edit list, negative composition
  offsets: a fragment's ``tfdt`` is its first picture's presentation time, as in the TS). The fragments are then
  grouped into segments on the TS segments' own boundaries, so CMAF and TS segments are the same 6 s grid.
- Audio: one track per AAC bitrate of the ladder (the first rendition with that bitrate gives it), segmented by
  ffmpeg's HLS muxer on the same target duration; its decode times, which that muxer starts from 0, are moved
  back onto the TS timeline (the first AAC frame's PTS), so audio and video keep the source's alignment.
No Airflow, S3 or database.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import ffmpeg

from vodflow.codec import Coded
from vodflow.errors import MediaToolError
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import ffmpeg_command
from vodflow.media.encode.hdr import CICP, SDR
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.measured import IFrame, MeasuredRendition, Segment
from vodflow.media.package import fmp4
from vodflow.media.package.mpegts import PTS_HZ
from vodflow.media.source.inputs import FILE_PROTOCOLS

INIT = "init.mp4"
CMAF_SEGMENT_PATTERN = "seg_%05d.m4s"
VIDEO_FLAGS = "+frag_keyframe+empty_moov+default_base_moof+delay_moov+cmaf+frag_discont+negative_cts_offsets"


@dataclass(frozen=True)
class TimedSegment(Segment):
    """A CMAF segment: what HLS needs (uri, seconds, bytes) and, in the track's timescale, what the MPD's
    ``SegmentTimeline`` needs (its first presentation time and exact duration)."""

    start: int = 0
    ticks: int = 0


@dataclass
class CmafTrack(Coded):
    """One CMAF track as written and measured: ``<name>/init.mp4`` and ``<name>/seg_NNNNN.m4s``."""

    name: str  # its folder: the rendition's name, or "aac-<kbps>k"
    kind: str  # "video" or "audio"
    codec: str  # RFC 6381, read from the init segment
    timescale: int
    segments: list[TimedSegment]
    init_size: int
    iframes: list[IFrame] = field(default_factory=list)
    width: int = 0
    height: int = 0
    frame_rate: str = ""  # fraction string
    sample_rate: int = 0
    channels: int = 0
    audio: str = ""  # a video track: the audio track it is played with (its rendition's AAC bitrate)
    video_range: str = "SDR"  # a video track: its HLS VIDEO-RANGE (SDR, PQ, HLG; media.encode.hdr)
    colour: tuple[int, ...] = ()  # a video track: H.273 (primaries, transfer, matrix); () unknown, SDR's default

    @property
    def family(self) -> str:
        """The codec family of the track (``codec_family``): what the manifests group its variants by."""
        return codec_family(self.codec)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def bytes(self) -> int:
        return self.init_size + sum(s.size for s in self.segments)

    @property
    def first_time(self) -> int:
        return self.segments[0].start if self.segments else 0


# RFC 6381 sample-entry prefixes → the codec names of ``media.encode.codecs`` (audio: its own family).
CODEC_FAMILIES = {"avc1": "h264", "avc3": "h264", "av01": "av1", "hvc1": "hevc", "hev1": "hevc", "mp4a": "aac"}


def codec_family(codec: str) -> str:
    """``avc1.64001f`` → ``h264``, ``av01.0.05M.08`` → ``av1``, ``hvc1.1.6.L93.B0`` → ``hevc``; an unknown
    prefix is its own family (listed after the known ones, never mixed with them)."""
    prefix = codec.split(".", 1)[0]
    return CODEC_FAMILIES.get(prefix, prefix)


def audio_track_name(kbps: int) -> str:
    return f"aac-{kbps}k"


def audio_from(renditions: list[Rendition], rendition: Rendition) -> int:
    """The AAC bitrate whose audio track ``rendition`` gives: the first rendition (ladder order) of each bitrate
    does, so every audio track is made once; 0 for the others."""
    kbps = rendition.audio_kbps
    first = next((r.name for r in renditions if r.audio_kbps == kbps), None)
    return kbps if kbps and first == rendition.name else 0


def build_remux_command(segments: list[str], video_out: str, audio_dir: str | None, segment_seconds: int
                        ) -> list[str]:
    """One stream copy of a rendition's TS segments (``copyts``: their timestamps as they are): its video as one
    fragmented MP4, and with ``audio_dir`` its audio as CMAF segments on the target duration."""
    source = ffmpeg.input("concat:" + "|".join(segments), protocol_whitelist=f"concat,{FILE_PROTOCOLS}",
                          f="mpegts")
    outputs = [source["v:0"].output(video_out, c="copy", f="mp4", use_editlist=0, movflags=VIDEO_FLAGS)]
    if audio_dir is not None:
        outputs.append(source["a:0"].output(
            os.path.join(audio_dir, "index.m3u8"), c="copy", **{"bsf:a": "aac_adtstoasc"}, f="hls",
            hls_time=segment_seconds, hls_playlist_type="vod", hls_segment_type="fmp4", hls_list_size=0,
            hls_fmp4_init_filename=INIT, hls_segment_filename=os.path.join(audio_dir, CMAF_SEGMENT_PATTERN)))
    return ffmpeg_command(ffmpeg.merge_outputs(*outputs), "-copyts")


def package_rendition(measured: MeasuredRendition, ts_dir: str, out_root: str, segment_seconds: int,
                      audio_kbps: int = 0, audio: int = 0) -> list[CmafTrack]:
    """The rendition's video track (``out_root/<name>/``) and, with ``audio_kbps``, the audio track of that
    bitrate (``out_root/aac-<kbps>k/``), from its TS segments in ``ts_dir``; each measured. ``audio``: the
    bitrate of the audio track the video is played with (its rendition's)."""
    video_dir = os.path.join(out_root, measured.name)
    os.makedirs(video_dir, exist_ok=True)
    whole = os.path.join(video_dir, "track.mp4")
    audio_dir = os.path.join(out_root, audio_track_name(audio_kbps)) if audio_kbps else None
    if audio_dir:
        os.makedirs(audio_dir, exist_ok=True)
    parts = [os.path.join(ts_dir, s.uri) for s in measured.segments]
    result = run_ffmpeg(build_remux_command(parts, whole, audio_dir, segment_seconds), timeout=600.0)
    if result.returncode != 0:
        raise classify_failure(result, out_root)
    tracks = [split_video(whole, video_dir, measured)]
    tracks[0].audio = audio_track_name(audio) if audio else ""
    os.unlink(whole)
    if audio_dir:
        os.unlink(os.path.join(audio_dir, "index.m3u8"))  # ffmpeg's own playlist: ours are measured
        tracks.append(measure_audio_track(audio_dir, audio_track_name(audio_kbps), first_audio_pts(parts[0])))
    return tracks


def split_video(path: str, out_dir: str, measured: MeasuredRendition) -> CmafTrack:
    """Cut one fragmented MP4 (a fragment per keyframe) into ``init.mp4`` and segments on the TS boundaries."""
    return _split(Path(path).read_bytes(), out_dir, measured, measured.name, measured.width, measured.height)


def codec_track(path: str, out_dir: str, rendition: Rendition, grid: MeasuredRendition) -> CmafTrack:
    """An other codec's rendition (``multicodec``: a fragmented MP4, a fragment per keyframe, from the whole
    video's encode or ``join_pieces``) as a CMAF track in ``out_dir``: moved onto the TS timeline (its first
    picture where ``grid``'s is: the same frame, since every rendition is encoded from one picture grid) and cut
    on ``grid``'s segment boundaries, so every codec's segments are the same 6 s. ``grid``: the top H.264
    rendition as measured. Its VIDEO-RANGE and H.273 colour are the rendition's."""
    data = bytearray(Path(path).read_bytes())  # one copy of the track, edited in place (no bytes() of it)
    info = fmp4.read_init(data)
    fragments = fmp4.read_fragments(data, info.init_size)
    if not fragments:
        raise MediaToolError(f"{rendition.name}: the encode holds no fragment")
    first = fragments[0].decode_time + fragments[0].composition_offset
    retime_fragments(data, info.init_size, round(Fraction(grid.first_pts * info.timescale, PTS_HZ)) - first)
    track = _split(data, out_dir, grid, rendition.name, rendition.width, rendition.height)
    track.video_range = rendition.dynamic_range
    track.colour = CICP[rendition.dynamic_range] if rendition.dynamic_range != SDR else ()
    return track


def join_pieces(pieces: list[str], out: str, first_frames: list[int], frame_rate: str) -> None:
    """One fragmented MP4 from a chunked encode's pieces of a rendition (``chunks.chunk_track_file``, in order):
    the first piece's init segment, then every piece's fragments as they are (a stream copy), their decode times
    moved so piece k starts at frame ``first_frames[k]`` of the grid after piece 0 (whatever timeline each
    piece's muxer started from) and the fragments numbered on. The pieces must share their sample entry (the
    same encoder settings): a track has one. Written piece by piece: one piece in memory at a time."""
    entry, number, origin = b"", 1, None
    with open(out, "wb") as joined:
        for path, frame in zip(pieces, first_frames, strict=True):
            data = bytearray(Path(path).read_bytes())
            info = fmp4.read_init(data)
            ticks = Fraction(info.timescale) / Fraction(frame_rate)
            if ticks.denominator != 1:
                raise MediaToolError(f"{path}: timescale {info.timescale} holds no whole frame at {frame_rate} fps")
            fragments = fmp4.read_fragments(data, info.init_size)
            if not fragments:
                raise MediaToolError(f"{path}: an empty piece")
            start = fragments[0].decode_time + fragments[0].composition_offset
            if origin is None:
                origin, entry = start, sample_entry(data)
                joined.write(data[:info.init_size])
            elif sample_entry(data) != entry:
                raise MediaToolError(f"{path}: encoded with other parameters than the first piece")
            shift = origin + (frame - first_frames[0]) * int(ticks) - start
            number = retime_fragments(data, info.init_size, shift, number)
            joined.write(memoryview(data)[info.init_size:])


def sample_entry(data: bytes | bytearray) -> bytes:
    """The bytes of a track's ``stsd`` (codec, size, configuration record): what pieces of one track share."""
    moov = next(b for b in fmp4.boxes(data) if b.kind == b"moov")
    stsd = fmp4.find(data, moov, b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    return bytes(data[stsd.offset:stsd.end]) if stsd else b""


def retime_fragments(data: bytearray, start: int, shift: int, number: int | None = None) -> int:
    """In place, every ``moof`` from byte ``start`` on: ``shift`` added to its ``tfdt``, and with ``number`` its
    ``mfhd`` sequence number set, counting on (they increase along a track). Returns the next number. Walks the
    boxes of the buffer itself: a whole track is never copied."""
    for box in fmp4.boxes(data, start):
        if box.kind != b"moof":
            continue
        tfdt = fmp4.find(data, box, b"traf", b"tfdt")
        if tfdt is not None:
            _add(data, tfdt.body + 4, 8 if data[tfdt.body] == 1 else 4, shift)
        if number is not None:
            mfhd = fmp4.child(data, box, b"mfhd")
            if mfhd is not None:
                struct.pack_into(">I", data, mfhd.body + 4, number)
            number += 1
    return number or 0


def _split(data: bytes | bytearray, out_dir: str, measured: MeasuredRendition, name: str, width: int, height: int
           ) -> CmafTrack:
    """``data`` (init + fragments) cut on ``measured``'s TS segment boundaries into ``out_dir``."""
    info = fmp4.read_init(data)
    fragments = fmp4.read_fragments(data, info.init_size)
    Path(out_dir, INIT).write_bytes(data[:info.init_size])
    bounds, elapsed = [], Fraction(0)
    for segment in measured.segments:  # each TS segment's first presentation time, in the track's timescale
        bounds.append(measured.first_pts * info.timescale / PTS_HZ + elapsed * info.timescale)
        elapsed += Fraction(segment.duration).limit_denominator(1_000_000)
    half_frame = info.timescale / (2 * float(Fraction(measured.frame_rate)))
    groups: list[list[fmp4.Fragment]] = [[] for _ in bounds]
    for fragment in fragments:
        start = fragment.decode_time + fragment.composition_offset
        index = max((i for i, b in enumerate(bounds) if start >= b - half_frame), default=0)
        groups[index].append(fragment)
    segments, iframes = [], []
    for number, group in enumerate(groups):
        uri = CMAF_SEGMENT_PATTERN % number
        if not group or not group[0].sync:
            raise MediaToolError(f"{name}/{uri}: no fragment starting with a keyframe at this boundary")
        base = group[0].offset
        Path(out_dir, uri).write_bytes(data[base:group[-1].end])
        ticks = sum(f.duration for f in group)
        segments.append(TimedSegment(uri=uri, duration=round(ticks / info.timescale, 6),
                                     size=group[-1].end - base, start=group[0].decode_time
                                     + group[0].composition_offset, ticks=ticks))
        iframes += [IFrame(uri=uri, offset=f.offset - base, length=f.first_sample_end - f.offset,
                           duration=round(f.duration / info.timescale, 6)) for f in group if f.sync]
    return CmafTrack(name=name, kind="video", codec=info.codec, timescale=info.timescale,
                     segments=segments, init_size=info.init_size, iframes=iframes, width=width,
                     height=height, frame_rate=measured.frame_rate)


def first_audio_pts(ts_segment: str) -> int:
    """The first audio packet's PTS (90 kHz) of a TS segment: where the audio track begins on the timeline."""
    out = subprocess.run(["ffprobe", "-v", "error", "-protocol_whitelist", FILE_PROTOCOLS,  # noqa: S603
                          "-select_streams", "a:0", "-show_entries", "packet=pts", "-read_intervals", "%+#1",
                          "-of", "json", ts_segment], capture_output=True, text=True, check=False)
    try:
        return int(json.loads(out.stdout)["packets"][0]["pts"])
    except (ValueError, KeyError, IndexError) as exc:
        raise MediaToolError(f"{ts_segment}: no audio packet to place the audio track", out.stderr) from exc


def measure_audio_track(out_dir: str, name: str, first_pts: int) -> CmafTrack:
    """Read back the audio segments ffmpeg's HLS muxer wrote, moving their decode times onto the TS timeline
    (``first_pts``, 90 kHz): the muxer starts them at 0."""
    init = bytearray(Path(out_dir, INIT).read_bytes())
    info = fmp4.read_init(bytes(init))
    blank_edit_lists(init)
    Path(out_dir, INIT).write_bytes(init)
    shift = round(first_pts * info.timescale / PTS_HZ)
    segments = []
    for number in range(len(os.listdir(out_dir))):
        path = Path(out_dir, CMAF_SEGMENT_PATTERN % number)
        if not path.exists():
            break
        data = bytearray(path.read_bytes())
        fragments = shift_decode_times(data, shift)
        path.write_bytes(data)
        ticks = sum(f.duration for f in fragments)
        segments.append(TimedSegment(uri=path.name, duration=round(ticks / info.timescale, 6), size=len(data),
                                     start=fragments[0].decode_time + shift, ticks=ticks))
    if not segments:
        raise MediaToolError(f"{name}: ffmpeg produced no audio segments")
    return CmafTrack(name=name, kind="audio", codec=info.codec, timescale=info.timescale, segments=segments,
                     init_size=info.init_size, sample_rate=info.sample_rate, channels=info.channels)


def blank_edit_lists(init: bytearray) -> None:
    """The muxer puts the track's start in an edit list (an empty edit as long as the first PTS); once the
    decode times carry it, that edit would delay the audio twice: it becomes ``free`` space."""
    moov = next((b for b in fmp4.boxes(bytes(init)) if b.kind == b"moov"), None)
    edts = fmp4.find(bytes(init), moov, b"trak", b"edts") if moov else None
    if edts is not None:
        init[edts.offset + 4:edts.offset + 8] = b"free"


def shift_decode_times(data: bytearray, shift: int) -> list[fmp4.Fragment]:
    """Add ``shift`` to every ``tfdt`` of one segment, in place; the fragments as they were before. The muxer's
    ``sidx`` (optional in CMAF, unused by the playlists and the MPD) becomes ``free`` space: it would have to be
    moved too, and ffmpeg's own reader then places the segment by it twice."""
    top = list(fmp4.boxes(bytes(data)))
    start = next((b.offset for b in top if b.kind == b"moof"), len(data))
    fragments = fmp4.read_fragments(bytes(data), start)
    for box in top:
        if box.kind == b"sidx":
            data[box.offset + 4:box.offset + 8] = b"free"
        elif box.kind == b"moof":
            tfdt = fmp4.find(bytes(data), box, b"traf", b"tfdt")
            if tfdt is not None:
                _add(data, tfdt.body + 4, 8 if data[tfdt.body] == 1 else 4, shift)
    return fragments


def _add(data: bytearray, offset: int, width: int, value: int) -> None:
    fmt = ">Q" if width == 8 else ">I"
    moved = struct.unpack_from(fmt, data, offset)[0] + value
    if moved < 0:
        raise MediaToolError(f"a decode time moved by {value} would be negative")
    struct.pack_into(fmt, data, offset, moved)
