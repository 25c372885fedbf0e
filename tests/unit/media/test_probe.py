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


def test_the_decode_budget_lets_a_4_hour_4k60_film_through_and_refuses_an_8k_square_one():
    """Each limit alone (side ≤ 8192, ≤ 4 h) lets 8192x8192 at 60 fps for 4 h through; their product does not."""
    film = parse_probe(ffprobe(video={"width": 3840, "height": 2160, "avg_frame_rate": "60/1",
                                      "r_frame_rate": "60/1"}, duration=str(4 * 3600)), 100)
    check_limits(film, Limits())  # 3840 × 2160 × 60 × 14400 = 7.17e12 ≤ 8e12
    cinema = parse_probe(ffprobe(video={"width": 4096, "height": 2160, "avg_frame_rate": "60000/1001",
                                        "r_frame_rate": "60000/1001"}, duration=str(4 * 3600)), 100)
    check_limits(cinema, Limits())
    bomb = parse_probe(ffprobe(video={"width": 8192, "height": 8192, "avg_frame_rate": "60/1",
                                      "r_frame_rate": "60/1"}, duration=str(4 * 3600)), 100)
    with pytest.raises(BadInput) as caught:
        check_limits(bomb, Limits())
    assert caught.value.code == errors.TOO_LARGE
    assert caught.value.message.startswith("The video is 8192x8192 at 60 fps for 240.0 min: 58.0 trillion pixels")


def test_the_budget_counts_the_decoded_picture_and_the_faster_rate():
    """A sample aspect ratio shrinks what is shown, not what is decoded; a 120 fps source decodes 120 frames a
    second though it is published at 60; a still picture is made again at the output rate."""
    squeezed = parse_probe(ffprobe(video={"width": 8192, "height": 4096, "sample_aspect_ratio": "1:16"}), 1)
    assert squeezed.width == 512 and squeezed.coded_pixels == 8192 * 4096
    fast = parse_probe(ffprobe(video={"avg_frame_rate": "120/1", "r_frame_rate": "120/1"}), 1)
    assert fast.fps == "60/1" and fast.decode_fps == 120
    still = parse_probe(ffprobe(video={"avg_frame_rate": "1/10", "r_frame_rate": "1/10"}), 1)
    assert still.decode_fps == 2 and still.pixel_rate == 1920 * 1080 * 2


@pytest.mark.parametrize("streams,limit,words", [
    ([{"codec_type": "audio"}] * 17, "max_audio_tracks", "17 audio tracks; at most 16"),
    ([{"codec_type": "subtitle", "codec_name": "subrip"}] * 33, "max_subtitle_tracks", "33 subtitle tracks"),
    ([{"codec_type": "data"}] * 64, "max_streams", "65 streams"),
])
def test_too_many_tracks_or_streams_are_refused(streams, limit, words):
    data = ffprobe(video={})
    data["streams"] += [{**s, "index": i + 1} for i, s in enumerate(streams)]
    attachments = [{"codec_type": "attachment", "index": 100 + i} for i in range(80)]  # fonts cost nothing
    check_limits(parse_probe({**data, "streams": data["streams"][:2] + attachments}, 1), Limits())
    with pytest.raises(BadInput) as caught:
        check_limits(parse_probe(data, 1), Limits())
    assert caught.value.code == errors.TOO_LARGE and words in caught.value.message
    check_limits(parse_probe(data, 1), Limits(**{limit: 100}))


@pytest.mark.parametrize("avg,expected", [("1/10", "2/1"), ("1/3", "2/1"), ("2/5", "2/1"), ("1/1", "2/1"),
                                          ("3/2", "3/1"), ("2/1", "2/1"), ("5/1", "5/1"), ("12/1", "12/1")])
def test_a_still_picture_or_slideshow_is_shown_again_at_2_fps_or_more(avg, expected):
    """At 0.1 fps no keyframe lands on the 2 s grid and a 6 s segment may hold no picture: a slower source is
    raised by a whole multiple (each frame shown evenly) to at least 2 fps; real low-rate video is left alone."""
    assert parse_probe(ffprobe(video={"avg_frame_rate": avg, "r_frame_rate": avg}), 1).fps == expected


def test_the_packet_scan_measures_the_longest_keyframe_interval():
    """A seek into an MPEG-TS lands on any packet: a chunk's read must start a keyframe interval early."""
    from fractions import Fraction

    from vodflow.media.encode.chunks import seek_preroll
    from vodflow.media.source.timestamps import parse_packet_timestamps

    # 29.97 fps, keyframes every 60 frames (2.002 s), flags as ffprobe writes them.
    packets = [f"{3003 * i},{3003 * i},3003,{'K_' if i % 60 == 0 else '__'}," for i in range(300)]
    scan = parse_packet_timestamps(packets, Fraction(1, 90000))
    assert (scan.duration, scan.jumps, scan.keyframe_interval) == (10.01, 0, 2.002)
    source = parse_probe(ffprobe(video={}), 1)
    assert seek_preroll(source) == 1  # an indexed container seeks to a keyframe
    from dataclasses import replace
    assert seek_preroll(replace(source, keyframe_interval=scan.keyframe_interval)) == 4
    unflagged = parse_packet_timestamps([p.rsplit(",", 2)[0] + "," for p in packets], Fraction(1, 90000))
    assert unflagged.keyframe_interval == 10.01  # no keyframe known: only a read from the start is sure


def test_a_still_picture_is_held_while_the_sound_runs():
    """One picture at 0.1 fps (a 10 s video stream) over 20 s of sound is published 20 s long; an ordinary video
    whose sound runs on is cut to its picture; a chunk of a still picture reads it from the start."""
    from vodflow.media.encode.chunks import seek_preroll

    still = parse_probe(ffprobe(video={"avg_frame_rate": "1/10", "r_frame_rate": "1/10", "duration": "10.0",
                                       "start_time": "0"}, audio={}), 1)
    assert still.still and still.video_end == 10.0 and still.picture_end == 20.0 and still.fps == "2/1"
    assert seek_preroll(still) >= 20
    video = parse_probe(ffprobe(video={"duration": "10.0", "start_time": "0"}, audio={}), 1)
    assert not video.still and video.picture_end == 10.0
