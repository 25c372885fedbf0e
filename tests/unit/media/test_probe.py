"""Interpreting ffprobe output and refusing bad sources with specific codes. Pure: JSON in, facts out."""

from __future__ import annotations

import pytest

from vodflow import errors
from vodflow.errors import BadInput
from vodflow.media.options import Limits
from vodflow.media.source.probe import check_limits, check_size, classify_probe_failure, parse_probe, sniff
from vodflow.triggers.uploads import UploadRequestError, check_request


def ffprobe(video=None, audio=None, **fmt):
    streams = []
    if video is not None:
        streams.append({"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
                        "pix_fmt": "yuv420p", "avg_frame_rate": "30/1", "r_frame_rate": "30/1",
                        "sample_aspect_ratio": "1:1", "field_order": "progressive", **video})
    if audio is not None:
        streams.append({"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, **audio})
    return {"streams": streams,
            "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "20.0", "bit_rate": "8000000", **fmt}}


def test_ordinary_source():
    info = parse_probe(ffprobe(video={}, audio={}), 1000)
    assert (info.width, info.height, info.fps, info.duration) == (1920, 1080, "30/1", 20.0)
    assert info.has_audio and info.audio_codec == "aac" and not info.vfr and not info.hdr and not info.interlaced
    assert info.bit_depth == 8 and info.size_bytes == 1000


@pytest.mark.parametrize("rotation_field", [
    {"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
    {"tags": {"rotate": "90"}},
])
def test_phone_rotation_swaps_display_size(rotation_field):
    info = parse_probe(ffprobe(video=rotation_field, audio={}), 1)
    assert (info.width, info.height) == (1080, 1920)
    assert info.portrait and info.rotation in (90, 270)


def test_anamorphic_source_uses_display_aspect():
    info = parse_probe(ffprobe(video={"width": 720, "height": 480, "sample_aspect_ratio": "32:27"}), 1)
    assert (info.width, info.height) == (853, 480)


def test_variable_frame_rate_is_snapped_to_a_standard_rate():
    info = parse_probe(ffprobe(video={"avg_frame_rate": "89573/3000", "r_frame_rate": "90000/1"}), 1)
    assert info.vfr and info.fps == "30000/1001"


def test_an_irregular_average_rate_is_encoded_at_the_nearest_whole_rate():
    info = parse_probe(ffprobe(video={"avg_frame_rate": "12981/1000", "r_frame_rate": "30/1"}), 1)
    assert info.vfr and info.fps == "13/1"


def test_30_stays_30_and_odd_rates_are_kept():
    assert parse_probe(ffprobe(video={}), 1).fps == "30/1"
    assert parse_probe(ffprobe(video={"avg_frame_rate": "12/1", "r_frame_rate": "12/1"}), 1).fps == "12/1"


def test_frame_rate_above_60_is_divided_down():
    assert parse_probe(ffprobe(video={"avg_frame_rate": "120/1", "r_frame_rate": "120/1"}), 1).fps == "60/1"
    assert parse_probe(ffprobe(video={"avg_frame_rate": "100/1", "r_frame_rate": "100/1"}), 1).fps == "50/1"


def test_hdr_10_bit_and_interlaced_are_recognised():
    info = parse_probe(ffprobe(video={"pix_fmt": "yuv420p10le", "color_transfer": "smpte2084",
                                      "field_order": "tt"}), 1)
    assert info.bit_depth == 10 and info.hdr and info.interlaced


@pytest.mark.parametrize("data,code", [
    (ffprobe(audio={}), errors.NO_VIDEO_STREAM),
    (ffprobe(video={"disposition": {"attached_pic": 1}, "codec_name": "mjpeg"}, audio={}), errors.NO_VIDEO_STREAM),
    (ffprobe(video={"codec_name": "mjpeg"}, format_name="jpeg_pipe"), errors.NOT_A_VIDEO),
    (ffprobe(video={}, duration="N/A"), errors.UNREADABLE),
    (ffprobe(video={"width": 0}), errors.UNREADABLE),
    (ffprobe(video={"avg_frame_rate": "0/0", "r_frame_rate": "0/0"}), errors.UNREADABLE),
])
def test_unusable_sources_are_refused_with_their_code(data, code):
    with pytest.raises(BadInput) as caught:
        parse_probe(data, 1)
    assert caught.value.code == code
    assert caught.value.message


def test_limits():
    limits = Limits(min_duration=1, max_duration=60, max_size_bytes=10_000, min_dimension=16, max_dimension=8192)
    ok = parse_probe(ffprobe(video={}, duration="30"), 100)
    check_limits(ok, limits)
    cases = [
        (parse_probe(ffprobe(video={}, duration="0.5"), 100), errors.TOO_SHORT, "0.50 s"),
        (parse_probe(ffprobe(video={}, duration="61"), 100), errors.TOO_LARGE, "min long"),
        (parse_probe(ffprobe(video={}, duration="30"), 20_000), errors.TOO_LARGE, "GiB"),
        (parse_probe(ffprobe(video={"width": 10000, "height": 5000}), 100), errors.UNSUPPORTED_DIMENSIONS,
         "10000x5000"),
        (parse_probe(ffprobe(video={"width": 8, "height": 8}), 100), errors.UNSUPPORTED_DIMENSIONS, "8x8"),
    ]
    for info, code, text in cases:
        with pytest.raises(BadInput) as caught:
            check_limits(info, limits)
        assert caught.value.code == code and text in caught.value.message


def test_one_size_limit_for_upload_requests_and_sources():
    check_size(100, 100)
    with pytest.raises(BadInput) as caught:
        check_size(101, 100)
    assert caught.value.code == errors.TOO_LARGE
    assert "101 bytes" in caught.value.message and "maximum is 100 bytes" in caught.value.message
    with pytest.raises(UploadRequestError) as refused:  # an app asking to upload it is told the same
        check_request({"filename": "a.mp4", "size": 101}, max_size_bytes=100)
    assert str(refused.value) == caught.value.message
    with pytest.raises(BadInput) as probed:  # and so is a run whose source it is
        check_limits(parse_probe(ffprobe(video={}, duration="30"), 101), Limits(max_size_bytes=100))
    assert probed.value.message == caught.value.message


def test_8k_is_within_default_limits():
    check_limits(parse_probe(ffprobe(video={"width": 7680, "height": 4320}), 100), Limits())


@pytest.mark.parametrize("head,code,word", [
    (b"", errors.EMPTY_FILE, "empty"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", errors.NOT_A_VIDEO, "JPEG"),
    (b"\x89PNG\r\n\x1a\n....", errors.NOT_A_VIDEO, "PNG"),
    (b"hello, this is a text file\n" * 10, errors.NOT_A_VIDEO, "text"),
    (b"ID3\x04\x00\x00", errors.NO_VIDEO_STREAM, "MP3"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", errors.NO_VIDEO_STREAM, "WAV"),
    (b"%PDF-1.7", errors.NOT_A_VIDEO, "PDF"),
])
def test_sniff_names_common_non_videos(head, code, word):
    found = sniff(head)
    assert found is not None and found[0] == code and word in found[1]


def test_sniff_lets_containers_through():
    assert sniff(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41") is None
    assert sniff(b"\x1aE\xdf\xa3\x9fB\x86\x81\x01") is None  # Matroska EBML header
    assert sniff(bytes(range(256))) is None


def test_probe_failures_are_classified():
    mp4_head = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 20
    assert classify_probe_failure("x: Format not on whitelist 'mov'", b"\x00" * 12).code == errors.NOT_A_VIDEO
    truncated = classify_probe_failure("[mov] moov atom not found\nx: Invalid data found", mp4_head)
    assert truncated.code == errors.UNREADABLE and "truncated" in truncated.message
    assert classify_probe_failure("Invalid data found", b"\x01\x02" * 10).code == errors.NOT_A_VIDEO


def test_a_video_clock_that_restarts_is_measured_packet_by_packet():
    """Two 5 s captures at 30 fps in one TS (90 kHz): the clock jumps back once; the video lasts 10 s."""
    from fractions import Fraction

    from vodflow.media.source.timestamps import parse_packet_timestamps

    capture = [f"{126000 + 3000 * i},{126000 + 3000 * i},3000," for i in range(150)]
    scan = parse_packet_timestamps([*capture, "", *capture], Fraction(1, 90000))
    assert (scan.duration, scan.jumps) == (10.0, 1)
    steady = parse_packet_timestamps(capture, Fraction(1, 90000))
    assert (steady.duration, steady.jumps) == (5.0, 0)
    # B-frames: PTS out of order but DTS steady is no jump.
    reordered = ["6000,0,3000", "3000,3000,3000", "12000,6000,3000", "9000,9000,3000"]  # pts,dts,duration
    assert parse_packet_timestamps(reordered, Fraction(1, 90000)).jumps == 0


def test_a_truncated_long_upload_is_caught_within_one_segment():
    """2 % of 600 s would let an upload 8 s short through; the tolerance is one segment at most."""
    from vodflow.errors import BadInput
    from vodflow.media.encode.renditions import check_complete

    check_complete(594.5, 600.0)  # within a segment
    with pytest.raises(BadInput):
        check_complete(592.0, 600.0)
    check_complete(29.5, 30.0)  # a short video keeps its 1 s
    with pytest.raises(BadInput):
        check_complete(28.5, 30.0)
