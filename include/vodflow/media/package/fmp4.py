"""Just enough ISO BMFF (fragmented MP4) parsing to cut and index our own CMAF tracks. Pure: bytes in, facts out.

What the playlists and the MPD need and ffmpeg does not report: where each fragment (``moof`` + ``mdat``) starts
and ends, its decode time and exact duration in the track's timescale, whether it starts with a sync sample and
where that first sample ends (the I-frame playlist's byte range), and from the ``moov`` the timescale, the handler
and the RFC 6381 codec string (``avc1.PPCCLL`` from the ``avcC``, ``av01.…`` from the ``av1C``, ``hvc1.…`` from
the ``hvcC``, ``mp4a.40.N`` from the ``esds``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from vodflow.media.package import codec_strings

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf"}
NON_SYNC = 0x0001_0000  # sample_is_non_sync_sample in the sample flags


@dataclass(frozen=True)
class Box:
    kind: bytes
    offset: int  # of the box header in the file
    size: int
    header: int  # 8, or 16 for a 64-bit size

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def body(self) -> int:
        return self.offset + self.header


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes between ``start`` and ``end``, in order (one level)."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"truncated {kind!r} box at byte {pos}")
        yield Box(kind, pos, size, header)
        pos += size


def child(data: bytes, box: Box, kind: bytes) -> Box | None:
    return next((b for b in boxes(data, box.body, box.end) if b.kind == kind), None)


def find(data: bytes, box: Box, *path: bytes) -> Box | None:
    """The first box down ``path`` from ``box`` (e.g. ``b"mdia", b"mdhd"``)."""
    current: Box | None = box
    for kind in path:
        current = child(data, current, kind) if current else None
    return current


@dataclass(frozen=True)
class TrackInfo:
    """The one track of a CMAF file's ``moov``."""

    track_id: int
    timescale: int
    handler: str  # "vide" or "soun"
    codec: str  # RFC 6381
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    init_size: int = 0  # bytes of ftyp + moov: the init segment


@dataclass(frozen=True)
class Fragment:
    """One ``moof`` + ``mdat`` of a track."""

    offset: int
    end: int
    decode_time: int  # tfdt, in the track's timescale
    duration: int  # the sum of its samples' durations
    samples: int
    sync: bool  # its first sample is a sync sample (an IDR for video)
    first_sample_end: int  # byte offset where the first sample's data ends
    composition_offset: int = 0  # of the first sample: its presentation time is decode_time + this


def read_init(data: bytes) -> TrackInfo:
    """The track of a single-track fragmented MP4 (ffmpeg's, CMAF): from its ``moov``."""
    top = list(boxes(data))
    moov = next((b for b in top if b.kind == b"moov"), None)
    if moov is None:
        raise ValueError("no moov box")
    trak = child(data, moov, b"trak")
    if trak is None:
        raise ValueError("moov has no track")
    tkhd, mdhd, hdlr = find(data, trak, b"tkhd"), find(data, trak, b"mdia", b"mdhd"), find(data, trak, b"mdia",
                                                                                           b"hdlr")
    stsd = find(data, trak, b"mdia", b"minf", b"stbl", b"stsd")
    if not (tkhd and mdhd and hdlr and stsd):
        raise ValueError("incomplete track header")
    track_id = struct.unpack_from(">I", data, tkhd.body + (20 if data[tkhd.body] == 1 else 12))[0]
    timescale = struct.unpack_from(">I", data, mdhd.body + (20 if data[mdhd.body] == 1 else 12))[0]
    handler = data[hdlr.body + 8:hdlr.body + 12].decode("ascii")
    entry = next(boxes(data, stsd.body + 8, stsd.end))  # the sample entry (avc1, mp4a…)
    init_size = max(b.end for b in top if b.kind in (b"ftyp", b"moov"))
    common = {"track_id": track_id, "timescale": timescale, "handler": handler, "init_size": init_size}
    if handler == "vide":
        width, height = struct.unpack_from(">HH", data, entry.body + 24)
        visual = Box(entry.kind, entry.offset, entry.size, entry.header + 78)  # the boxes after the fields
        return TrackInfo(**common, codec=video_codec_string(data, visual), width=width, height=height)
    if handler == "soun":
        channels, _, _, _, rate = struct.unpack_from(">HHHHI", data, entry.body + 16)
        esds = child(data, Box(entry.kind, entry.offset, entry.size, entry.header + 28), b"esds")
        codec = f"mp4a.40.{_audio_object_type(data, esds) if esds else 2}"
        return TrackInfo(**common, codec=codec, sample_rate=rate >> 16, channels=channels)
    raise ValueError(f"unsupported handler {handler!r}")


def video_codec_string(data: bytes, entry: Box) -> str:
    """RFC 6381 of a visual sample entry: ``avc1``/``avc3`` from the ``avcC``, ``av01`` from the ``av1C``,
    ``hvc1``/``hev1`` from the ``hvcC`` (``codec_strings``)."""
    config = {b"avc1": b"avcC", b"avc3": b"avcC", b"av01": b"av1C", b"hvc1": b"hvcC", b"hev1": b"hvcC"}.get(
        entry.kind)
    box = child(data, entry, config) if config else None
    if box is None:
        raise ValueError(f"unsupported video sample entry {entry.kind!r}")
    body = data[box.body:box.end]
    if config == b"avcC":
        return f"{entry.kind.decode()}.{body[1:4].hex()}"
    if config == b"av1C":
        return codec_strings.av01(body)
    return codec_strings.hevc(entry.kind.decode(), body)


def _audio_object_type(data: bytes, esds: Box) -> int:
    """The AAC audio object type from the DecoderSpecificInfo (tag 5) of an ``esds``: 2 is AAC-LC."""
    pos = esds.body + 4
    while pos < esds.end:
        tag = data[pos]
        pos += 1
        length = 0
        for _ in range(4):
            byte = data[pos]
            pos += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 3:
            pos += 3  # ES_ID, flags (no optional fields in ffmpeg's)
        elif tag == 4:
            pos += 13  # objectTypeIndication … avgBitrate
        elif tag == 5:
            return data[pos] >> 3
        else:
            pos += length
    return 2


def read_fragments(data: bytes, start: int = 0) -> list[Fragment]:
    """Every ``moof`` + ``mdat`` from ``start`` on (the first track of each ``moof``: ours have one)."""
    fragments: list[Fragment] = []
    top = [b for b in boxes(data, start) if b.kind in (b"moof", b"mdat")]
    for moof, mdat in zip(top[::2], top[1::2], strict=False):
        if moof.kind != b"moof" or mdat.kind != b"mdat":
            raise ValueError(f"expected moof then mdat at byte {moof.offset}")
        traf = child(data, moof, b"traf")
        tfhd, tfdt, trun = (find(data, traf, k) for k in (b"tfhd", b"tfdt", b"trun")) if traf else (None,) * 3
        if not (tfhd and tfdt and trun):
            raise ValueError(f"incomplete fragment at byte {moof.offset}")
        defaults = _tfhd_defaults(data, tfhd)
        version = data[tfdt.body]
        decode_time = struct.unpack_from(">Q" if version == 1 else ">I", data, tfdt.body + 4)[0]
        fragments.append(_read_trun(data, trun, moof, mdat, decode_time, defaults))
    return fragments


def _tfhd_defaults(data: bytes, tfhd: Box) -> dict[str, int]:
    flags = int.from_bytes(data[tfhd.body + 1:tfhd.body + 4], "big")
    pos, found = tfhd.body + 8, {}
    for bit, name, width in ((0x01, "base", 8), (0x02, "description", 4), (0x08, "duration", 4),
                             (0x10, "size", 4), (0x20, "flags", 4)):
        if flags & bit:
            found[name] = int.from_bytes(data[pos:pos + width], "big")
            pos += width
    return found


def _read_trun(data: bytes, trun: Box, moof: Box, mdat: Box, decode_time: int, defaults: dict[str, int]
               ) -> Fragment:
    version, flags = data[trun.body], int.from_bytes(data[trun.body + 1:trun.body + 4], "big")
    count = struct.unpack_from(">I", data, trun.body + 4)[0]
    pos = trun.body + 8
    data_offset = moof.offset + mdat.header + moof.size  # default-base-is-moof, data right after mdat's header
    if flags & 0x001:
        data_offset = moof.offset + struct.unpack_from(">i", data, pos)[0]
        pos += 4
    first_flags = defaults.get("flags", 0)
    if flags & 0x004:
        first_flags = struct.unpack_from(">I", data, pos)[0]
        pos += 4
    duration, first_size, first_cto = 0, 0, 0
    for i in range(count):
        sample_duration, size, cto = defaults.get("duration", 0), defaults.get("size", 0), 0
        if flags & 0x100:
            sample_duration = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        if flags & 0x200:
            size = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        if flags & 0x400:
            sample_flags = struct.unpack_from(">I", data, pos)[0]
            if i == 0 and not flags & 0x004:
                first_flags = sample_flags
            pos += 4
        if flags & 0x800:
            cto = struct.unpack_from(">i" if version == 1 else ">I", data, pos)[0]
            pos += 4
        if i == 0:
            first_size, first_cto = size, cto
        duration += sample_duration
    return Fragment(offset=moof.offset, end=mdat.end, decode_time=decode_time, duration=duration, samples=count,
                    sync=not first_flags & NON_SYNC, first_sample_end=data_offset + first_size,
                    composition_offset=first_cto)
