"""HDR metadata from ffprobe (hostile: parsed strictly, dropped when wrong) and the encoders' colour parameters
(x265's and SVT-AV1's units and syntax). Pure."""

from __future__ import annotations

import logging

import pytest

from vodflow.codec import decode
from vodflow.media.encode import hdr
from vodflow.media.source.colour import colour_fields, hdr_metadata, parse_content_light, parse_mastering_display
from vodflow.media.source.info import ContentLight, MasteringDisplay, SourceInfo
from vodflow.media.source.probe import parse_probe, with_first_frame_metadata

MASTERING = {"side_data_type": "Mastering display metadata",
             "red_x": "34000/50000", "red_y": "16000/50000", "green_x": "13250/50000", "green_y": "34500/50000",
             "blue_x": "7500/50000", "blue_y": "3000/50000", "white_point_x": "15635/50000",
             "white_point_y": "16450/50000", "min_luminance": "50/10000", "max_luminance": "10000000/10000"}
LIGHT = {"side_data_type": "Content light level metadata", "max_content": 1000, "max_average": 400}
HDR10 = MasteringDisplay(red=(0.68, 0.32), green=(0.265, 0.69), blue=(0.15, 0.06), white_point=(0.3127, 0.329),
                         max_luminance=1000.0, min_luminance=0.005)


def ffprobe(**video):
    return {"streams": [{"index": 0, "codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080,
                         "pix_fmt": "yuv420p10le", "avg_frame_rate": "25/1", "r_frame_rate": "25/1", **video}],
            "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.0"}}


PQ_STREAM = {"color_transfer": "smpte2084", "color_primaries": "bt2020", "color_space": "bt2020nc",
             "color_range": "tv"}


def test_mastering_display_and_content_light_from_stream_side_data():
    info = parse_probe(ffprobe(**PQ_STREAM, side_data_list=[MASTERING, LIGHT]), 1)
    assert info.hdr and (info.color_transfer, info.color_primaries, info.color_matrix, info.color_range) == (
        "smpte2084", "bt2020", "bt2020nc", "tv")
    assert info.mastering_display == HDR10 and info.content_light == ContentLight(1000, 400)


def test_av1_units_give_the_same_display():
    """AV1's metadata OBU: chromaticities in 1/65536, max luminance in 1/256, min in 1/16384."""
    av1 = {**MASTERING, "red_x": "44564/65536", "max_luminance": "256000/256", "min_luminance": "82/16384"}
    md = parse_mastering_display(av1)
    assert md is not None and abs(md.red[0] - 0.68) < 2e-5 and md.max_luminance == 1000.0
    assert hdr.x265_master_display(md) == "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


def test_first_frame_metadata_fills_what_the_container_lacks():
    info = parse_probe(ffprobe(**PQ_STREAM), 1)
    assert info.mastering_display is None and info.content_light is None
    filled = with_first_frame_metadata(info, [{"side_data_type": "H.26[45] User Data Unregistered SEI message"},
                                             MASTERING, LIGHT])
    assert filled.mastering_display == HDR10 and filled.content_light == ContentLight(1000, 400)


@pytest.mark.parametrize("change,why", [
    ({"red_x": "1e5"}, "not a number"),
    ({"red_x": "-3/4"}, "not a number"),
    ({"red_x": "3/0"}, "divides by zero"),
    ({"green_y": "70000/50000"}, "no chromaticity"),
    ({"blue_x": None}, "missing"),
    ({"max_luminance": "200000000/10000"}, "implausible"),  # 20 000 nits: above PQ's ceiling
    ({"min_luminance": "10000000/10000"}, "implausible"),  # black as bright as white
    ({"red_x": "0/50000", "red_y": "0/1"}, "unset"),
    ({"white_point_x": "1" * 13}, "not a number"),  # no giant integers
    ({"red_x": "1/2\nlog-level=full"}, "not a number"),  # no line or parameter smuggled into an encoder option
])
def test_bad_mastering_display_is_dropped_and_logged(caplog, change, why):
    with caplog.at_level(logging.WARNING):
        assert parse_mastering_display({**MASTERING, **change}) is None
    assert why in caplog.text


@pytest.mark.parametrize("entry,expected", [
    ({"max_content": 1000, "max_average": 400}, ContentLight(1000, 400)),
    ({"max_content": "1000", "max_average": "400"}, ContentLight(1000, 400)),
    ({"max_content": 0, "max_average": 0}, None),  # "not computed": nothing to carry
    ({"max_content": 70000, "max_average": 400}, None),
    ({"max_content": True, "max_average": 400}, None),
    ({"max_content": "1000.5", "max_average": 400}, None),
    ({"max_average": 400}, None),
])
def test_content_light_level_is_parsed_strictly(entry, expected):
    assert parse_content_light(entry) == expected


def test_hostile_side_data_shapes_are_ignored():
    assert hdr_metadata("not a list") == (None, None)  # type: ignore[arg-type]
    assert hdr_metadata([None, 3, "x", {"side_data_type": 5}]) == (None, None)
    assert colour_fields({"color_transfer": "smpte2084;rm -rf", "color_primaries": "BT2020", "color_space": 9,
                          "color_range": "unknown"}) == dict.fromkeys(
        ("color_transfer", "color_primaries", "color_matrix", "color_range"), "")
    assert not parse_probe(ffprobe(color_transfer="smpte2084 "), 1).hdr


def source(**fields) -> SourceInfo:
    return parse_probe(ffprobe(**fields), 1)


PQ_SOURCE = source(**PQ_STREAM, side_data_list=[MASTERING, LIGHT])
HLG_SOURCE = source(color_transfer="arib-std-b67", color_primaries="bt2020", color_space="bt2020nc")
SDR_SOURCE = source(color_transfer="bt709", color_primaries="bt709", color_space="bt709")


def test_dynamic_range_and_cicp():
    assert [hdr.dynamic_range(s, c) for s in (PQ_SOURCE, HLG_SOURCE, SDR_SOURCE) for c in ("h264", "hevc", "av1")] \
        == ["SDR", "PQ", "PQ", "SDR", "HLG", "HLG", "SDR", "SDR", "SDR"]
    assert [hdr.cicp(s, "av1") for s in (PQ_SOURCE, HLG_SOURCE, SDR_SOURCE)] == [(9, 16, 9), (9, 18, 9), (1, 1, 1)]
    assert hdr.cicp(PQ_SOURCE, "h264") == (1, 1, 1)


def test_a_source_stored_before_its_colour_was_recorded_is_sdr():
    """A stored HDR source without a transfer name: tone-mapped everywhere, as before (never a guessed PQ)."""
    stored = {k: v for k, v in PQ_SOURCE.to_dict().items()
              if k not in ("color_transfer", "color_primaries", "color_matrix", "color_range", "mastering_display",
                           "content_light")}
    old = decode(SourceInfo, stored)
    assert old.hdr and old.mastering_display is None
    assert hdr.dynamic_range(old, "av1") == "SDR" and hdr.color_options(old, "av1") == hdr.ColorOptions()
    assert decode(SourceInfo, PQ_SOURCE.to_dict()) == PQ_SOURCE


def test_x265_options_for_hdr10():
    colour = hdr.color_options(PQ_SOURCE, "hevc")
    assert colour.options == {"pix_fmt": "yuv420p10le", "color_primaries": "bt2020", "color_trc": "smpte2084",
                              "colorspace": "bt2020nc", "color_range": "tv", "dolbyvision": 0}
    assert colour.pix_fmt == "yuv420p10le"
    assert colour.params == {
        "colorprim": "bt2020", "transfer": "smpte2084", "colormatrix": "bt2020nc", "range": "limited",
        "hdr10": "1",  # no repeat-headers: parameter sets in the hvc1 init only
        # chromaticity × 50 000, luminance × 10 000: 0.68 → 34000, 1000 nits → 10000000, 0.005 nits → 50
        "master-display": "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)",
        "max-cll": "1000,400"}
    assert colour.params_text({"keyint": 60, "hdr10": "0"}).startswith("keyint=60:hdr10=1:colorprim=bt2020")


def test_svtav1_options_for_hdr10():
    colour = hdr.color_options(PQ_SOURCE, "av1")
    assert colour.options["color_trc"] == "smpte2084" and colour.pix_fmt == "yuv420p10le"
    assert colour.params == {
        "color-primaries": "9", "transfer-characteristics": "16", "matrix-coefficients": "9", "color-range": "0",
        "mastering-display": "G(0.26500,0.69000)B(0.15000,0.06000)R(0.68000,0.32000)WP(0.31270,0.32900)"
                             "L(1000.0000,0.00500)",
        "content-light": "1000,400"}


def test_hlg_carries_no_metadata_it_does_not_have():
    hevc, av1 = hdr.color_options(HLG_SOURCE, "hevc"), hdr.color_options(HLG_SOURCE, "av1")
    assert hevc.options["color_trc"] == av1.options["color_trc"] == "arib-std-b67"
    assert hevc.params["transfer"] == "arib-std-b67" and av1.params["transfer-characteristics"] == "18"
    assert not {"hdr10", "master-display", "max-cll"} & set(hevc.params)
    assert not {"mastering-display", "content-light"} & set(av1.params)


def test_sdr_and_h264_get_todays_tags():
    assert hdr.color_options(SDR_SOURCE, "av1") == hdr.ColorOptions()
    assert hdr.color_options(PQ_SOURCE, "h264") == hdr.ColorOptions()
    assert hdr.ColorOptions().pix_fmt == "yuv420p" and hdr.ColorOptions().params_text({"a": 1}) == "a=1"


def graph(*streams) -> str:
    import ffmpeg
    outputs = [s.output(f"{i}.mp4") for i, s in enumerate(streams)]
    return " ".join(ffmpeg.merge_outputs(*outputs).get_args())


def test_one_decode_splits_once_and_tone_maps_only_the_sdr_branch():
    import ffmpeg
    sdr, hdr_branch = hdr.split_dynamic_range(ffmpeg.input("in.mp4")["v:0"], PQ_SOURCE, "30/1")
    args = graph(sdr, hdr_branch)
    assert args.count("]tonemap=") == 1 and args.count("split=2") == 1 and args.count("]fps=") == 1
    assert args.index("]fps=") < args.index("split=2") < args.index("]tonemap=")
    assert "format=yuv420p10le" in args and "sidedata=mode=delete" in args


def test_an_sdr_source_has_one_branch_and_no_tone_map():
    import ffmpeg
    sdr, hdr_branch = hdr.split_dynamic_range(ffmpeg.input("in.mp4")["v:0"], SDR_SOURCE, "30/1")
    assert hdr_branch is None and "tonemap" not in graph(sdr) and "split" not in graph(sdr)
    assert "tonemap" not in graph(hdr.hdr_picture(ffmpeg.input("in.mp4")["v:0"], PQ_SOURCE))


def test_mdcv_and_clli_boxes_in_st2086_units():
    import struct

    from vodflow.media.package.hdr_boxes import clli_box, mdcv_box
    assert mdcv_box(HDR10) == struct.pack(">I4s8H2I", 32, b"mdcv", 13250, 34500, 7500, 3000, 34000, 16000, 15635,
                                          16450, 10000000, 50)
    assert clli_box(ContentLight(1000, 400)) == b"\x00\x00\x00\x0cclli\x03\xe8\x01\x90"
