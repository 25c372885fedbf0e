"""The TS indexer on hand-built transport streams."""

from __future__ import annotations

import pytest

from vodflow.media.package.mpegts import PACKET, avc_codec_string, index_segment

VIDEO_PID, AUDIO_PID, PMT_PID = 0x100, 0x101, 0x1000
SPS = b"\x00\x00\x00\x01\x67\x64\x00\x1f\xac\xd9"  # High profile, constraints 0, level 3.1
IDR = b"\x00\x00\x00\x01\x65\x88\x84"


def packet(pid: int, payload: bytes, pusi: bool = False, rai: bool = False) -> bytes:
    header = bytes([0x47, (0x40 if pusi else 0) | (pid >> 8), pid & 0xFF])
    if rai:
        adaptation = bytes([1, 0x40])
        body = header + bytes([0x30]) + adaptation + payload
    else:
        body = header + bytes([0x10]) + payload
    assert len(body) <= PACKET
    return body + b"\xff" * (PACKET - len(body))


def psi(table: bytes) -> bytes:
    return b"\x00" + table  # pointer field


def pat() -> bytes:
    section = bytes([0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xE0 | (PMT_PID >> 8), PMT_PID & 0xFF]) + b"\0" * 4
    return psi(section)


def pmt() -> bytes:
    streams = bytes([0x0F, 0xE0 | (AUDIO_PID >> 8), AUDIO_PID & 0xFF, 0xF0, 0,
                     0x1B, 0xE0 | (VIDEO_PID >> 8), VIDEO_PID & 0xFF, 0xF0, 0])
    body = bytes([0, 1, 0xC1, 0, 0, 0xE0 | (VIDEO_PID >> 8), VIDEO_PID & 0xFF, 0xF0, 0]) + streams
    length = len(body) + 4
    return psi(bytes([0x02, 0xB0 | (length >> 8), length & 0xFF]) + body + b"\0" * 4)


def pes(pts: int, payload: bytes) -> bytes:
    p = bytes([0x21 | ((pts >> 29) & 0x0E), (pts >> 22) & 0xFF, 0x01 | ((pts >> 14) & 0xFE),
               (pts >> 7) & 0xFF, 0x01 | ((pts << 1) & 0xFE)])
    return b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05" + p + payload


def segment() -> bytes:
    return b"".join([
        packet(0, pat(), pusi=True),
        packet(PMT_PID, pmt(), pusi=True),
        packet(VIDEO_PID, pes(126_000, b"\x00\x00\x00\x01\x09\xf0" + SPS), pusi=True, rai=True),
        packet(AUDIO_PID, b"\x00\x00\x01\xc0", pusi=True),
        packet(VIDEO_PID, IDR),
        packet(VIDEO_PID, pes(129_003, b"\x00\x00\x00\x01\x41\x9a"), pusi=True),
        packet(VIDEO_PID, pes(306_000, IDR), pusi=True, rai=True),
    ])


def test_index_finds_keyframes_pts_and_sps():
    data = segment()
    index = index_segment(data)
    assert index.video_pid == VIDEO_PID
    assert [(p.offset, p.pts, p.keyframe) for p in index.pes] == [
        (2 * PACKET, 126_000, True), (5 * PACKET, 129_003, False), (6 * PACKET, 306_000, True)]
    assert index.end_of(0) == 5 * PACKET  # the first access unit spans the audio packet in between
    assert index.end_of(2) == len(data)
    assert avc_codec_string(index.sps) == "avc1.64001f"


def test_lost_sync_is_an_error():
    data = bytearray(segment())
    data[PACKET * 3] = 0x00
    with pytest.raises(ValueError, match="sync"):
        index_segment(bytes(data))
