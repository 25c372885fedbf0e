"""Just enough MPEG-TS parsing to index our own HLS segments. Pure: bytes in, facts out.

It yields what the multivariant and I-frame playlists need and ffmpeg does not report: the byte offset and PTS
of every keyframe (ffmpeg's muxer flags them with the random-access indicator) and the H.264 SPS, whose first
three bytes are the real profile/constraints/level for the CODECS attribute (e.g. avc1.64001f).
Reading a segment costs a few milliseconds, instead of one ffprobe process per segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PACKET = 188
SYNC = 0x47
STREAM_TYPE_H264 = 0x1B
PTS_HZ = 90_000


@dataclass
class VideoPes:
    offset: int  # byte offset of the TS packet where this PES (one access unit) starts
    pts: int | None  # 90 kHz
    keyframe: bool


@dataclass
class SegmentIndex:
    size: int
    video_pid: int | None = None
    pes: list[VideoPes] = field(default_factory=list)
    sps: bytes | None = None  # first SPS NAL unit seen (without start code)

    @property
    def keyframes(self) -> list[VideoPes]:
        return [p for p in self.pes if p.keyframe]

    def end_of(self, pes_index: int) -> int:
        """Byte offset where the access unit ``pes_index`` ends: the next video PES or the end of the file."""
        following = self.pes[pes_index + 1 : pes_index + 2]
        return following[0].offset if following else self.size


def _payload(packet: bytes) -> tuple[bytes, bool, bool]:
    """(payload, payload_unit_start, random_access_indicator)."""
    pusi = bool(packet[1] & 0x40)
    control = (packet[3] >> 4) & 0x3
    pos = 4
    rai = False
    if control in (2, 3):  # adaptation field present
        length = packet[4]
        if length > 0:
            rai = bool(packet[5] & 0x40)
        pos = 5 + length
    if control in (1, 3) and pos < PACKET:
        return packet[pos:], pusi, rai
    return b"", pusi, rai


def _section(payload: bytes) -> bytes:
    pointer = payload[0]
    return payload[1 + pointer :]


def _pes_pts(payload: bytes) -> int | None:
    if len(payload) < 14 or payload[:3] != b"\x00\x00\x01":
        return None
    if not payload[7] & 0x80:
        return None
    p = payload[9:14]
    return ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | (p[4] >> 1)


def _find_sps(es: bytes) -> bytes | None:
    start = 0
    while True:
        start = es.find(b"\x00\x00\x01", start)
        if start < 0 or start + 4 > len(es):
            return None
        if es[start + 3] & 0x1F == 7:
            return es[start + 3 : start + 3 + 16]
        start += 3


def index_segment(data: bytes) -> SegmentIndex:
    """Index the video access units of one TS segment."""
    index = SegmentIndex(size=len(data))
    pmt_pid: int | None = None
    collecting_sps: bytearray | None = None
    for offset in range(0, len(data) - PACKET + 1, PACKET):
        packet = data[offset : offset + PACKET]
        if packet[0] != SYNC:
            raise ValueError(f"lost MPEG-TS sync at byte {offset}")
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        payload, pusi, rai = _payload(packet)
        if pid == 0 and pusi and pmt_pid is None:
            section = _section(payload)
            # First program entry after the 8-byte section header.
            pmt_pid = ((section[10] & 0x1F) << 8) | section[11]
        elif pid == pmt_pid and pusi and index.video_pid is None:
            index.video_pid = _video_pid_from_pmt(_section(payload))
        elif pid == index.video_pid and index.video_pid is not None:
            if pusi:
                if collecting_sps is not None and index.sps is None:
                    index.sps = _find_sps(bytes(collecting_sps))
                    collecting_sps = None
                index.pes.append(VideoPes(offset=offset, pts=_pes_pts(payload), keyframe=rai))
                if rai and index.sps is None:
                    collecting_sps = bytearray(payload)
            elif collecting_sps is not None and len(collecting_sps) < 8192:
                collecting_sps += payload
    if collecting_sps is not None and index.sps is None:
        index.sps = _find_sps(bytes(collecting_sps))
    return index


def _video_pid_from_pmt(section: bytes) -> int | None:
    section_length = ((section[1] & 0x0F) << 8) | section[2]
    program_info_length = ((section[10] & 0x0F) << 8) | section[11]
    pos = 12 + program_info_length
    end = 3 + section_length - 4  # before CRC
    while pos + 5 <= end:
        stream_type = section[pos]
        pid = ((section[pos + 1] & 0x1F) << 8) | section[pos + 2]
        es_info_length = ((section[pos + 3] & 0x0F) << 8) | section[pos + 4]
        if stream_type == STREAM_TYPE_H264:
            return pid
        pos += 5 + es_info_length
    return None


def avc_codec_string(sps: bytes) -> str:
    """RFC 6381 codec string from an SPS NAL unit: avc1.PPCCLL (profile, constraint flags, level)."""
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
