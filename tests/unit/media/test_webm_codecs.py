"""The WebM download's RFC 6381 codecs string from its AV1 configuration record (ffprobe's hex dump of it)."""

from __future__ import annotations

import pytest

from vodflow.errors import MediaToolError
from vodflow.media.package.webm import av1_codec_string, av1_track_in, extradata_bytes, opus_kbps


@pytest.mark.parametrize("record,expected", [
    (bytes([0x81, 0x08, 0x0C, 0x00]), "av01.0.08M.08"),  # Main, level 4.0, 8-bit 4:2:0
    (bytes([0x81, 0x0D, 0x4C, 0x00]), "av01.0.13M.10"),  # 10-bit (HDR), level 5.1
    (bytes([0x81, 0x45, 0xE0, 0x00]), "av01.2.05H.12"),  # Professional, high tier, 12-bit
])
def test_codec_string_from_the_av1c_record(record, expected):
    assert av1_codec_string(record) == expected


def test_no_record_is_an_error_not_a_guess():
    with pytest.raises(MediaToolError):
        av1_codec_string(b"")
    with pytest.raises(MediaToolError):
        av1_codec_string(bytes([0x0A, 0x0B, 0x00, 0x00]))  # an OBU, not an av1C


def test_ffprobe_hex_dump_back_to_bytes():
    dump = ("\n00000000: 8104 0c00 0a0b 0000 0024 cf7f 0dbf ff30  .........$.....0\n"
            "00000010: 08                                       .\n")
    assert extradata_bytes(dump) == bytes.fromhex("81040c000a0b00000024cf7f0dbfff3008")


def test_opus_rate_follows_the_renditions_aac():
    assert [opus_kbps(k) for k in (64, 96, 128, 160)] == [96, 96, 128, 128]


def test_a_cmaf_track_is_found_in_its_folder_in_segment_order(tmp_path):
    assert av1_track_in(str(tmp_path / "missing")) is None
    assert av1_track_in(str(tmp_path)) is None
    for name in ("seg_00001.m4s", "init.mp4", "seg_00000.m4s", "index.m3u8"):
        (tmp_path / name).write_bytes(b"x")
    track = av1_track_in(str(tmp_path))
    assert track is not None and track.init == str(tmp_path / "init.mp4")
    assert track.segments == (str(tmp_path / "seg_00000.m4s"), str(tmp_path / "seg_00001.m4s"))
