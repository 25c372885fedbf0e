"""HDR kept in the 10-bit codecs, on real media: an HDR10 (PQ, with mastering display and content light in the
HEVC SEI) and an HLG source are probed, then encoded from one decode into H.264 (the tone-mapped SDR branch),
HEVC and AV1 (the HDR branch) by the static ffmpeg 9 the multi-codec runs use; ffprobe reads back the colour
tags, the bit depth and the HDR side data of each, and the HDR renditions' mean luma is compared with the
source's (a colour conversion on the way would wash it out). An SDR source gets no HDR tag anywhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import ffmpeg
import pytest

from vodflow.devtools.samples import SampleSpec, make_hdr_sample, make_sample
from vodflow.media.encode import hdr
from vodflow.media.encode.codecs import modern_ffmpeg
from vodflow.media.encode.ffmpeg import ffmpeg_command, output_grid, scaled
from vodflow.media.encode.ladder import Rendition
from vodflow.media.package.fmp4 import boxes
from vodflow.media.package.hdr_boxes import with_hdr_boxes
from vodflow.media.source.colour import first_frame_side_data, hdr_metadata
from vodflow.media.source.info import ContentLight, MasteringDisplay, SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS, source_input
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration

PQ, HLG = "smpte2084", "arib-std-b67"
HDR10 = MasteringDisplay(red=(0.68, 0.32), green=(0.265, 0.69), blue=(0.15, 0.06), white_point=(0.3127, 0.329),
                         max_luminance=1000.0, min_luminance=0.005)  # samples.HDR10_MASTER_DISPLAY
RUNG = Rendition(name="270p", width=480, height=270, video_kbps=400, maxrate_kbps=600, bufsize_kbits=800,
                 audio_kbps=0, fps="30/1")
ENCODERS = {"h264": {"c:v": "libx264", "preset": "ultrafast", "b:v": "400k"},
            "hevc": {"c:v": "libx265", "preset": "ultrafast", "b:v": "300k"},
            "av1": {"c:v": "libsvtav1", "preset": 12, "crf": 40}}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hdr")
    return {PQ: Path(make_hdr_sample(str(root / "pq.mp4"), PQ)),
            HLG: Path(make_hdr_sample(str(root / "hlg.mp4"), HLG)),
            "sdr": Path(make_sample(str(root / "sdr.mp4"), SampleSpec(640, 360, 2.0, "30", audio=False)))}


def probe_file(path: Path) -> SourceInfo:
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


def video_stream(path: Path) -> dict:
    args = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout  # noqa: S603
    return json.loads(out)["streams"][0]


def mean_luma(path: Path, frames: int = 10) -> float:
    """The mean luma of the first frames, in the picture's own code values (10-bit stays 10-bit)."""
    graph = f"movie={path},trim=end_frame={frames},signalstats"
    out = subprocess.run(["ffprobe", "-v", "error", "-f", "lavfi", graph, "-show_entries",  # noqa: S603
                          "frame_tags=lavfi.signalstats.YAVG", "-of", "json"], capture_output=True, text=True,
                         check=True).stdout
    values = [float(f["tags"]["lavfi.signalstats.YAVG"]) for f in json.loads(out)["frames"]]
    return sum(values) / len(values)


def encode(src: Path, source: SourceInfo, out: Path, codecs: tuple[str, ...]) -> dict[str, Path]:
    """One decode, as a multi-codec run makes it: the picture split once into SDR and HDR branches; H.264 from
    the SDR one, each 10-bit codec from the HDR one (or the SDR one for an SDR source)."""
    ten_bit = [c for c in codecs if hdr.dynamic_range(source, c) != hdr.SDR]
    eight_bit = [c for c in codecs if c not in ten_bit]
    decoded = source_input(str(src))["v:0"]
    if eight_bit:
        sdr, hdr_branch = hdr.split_dynamic_range(decoded, source, RUNG.fps)
    else:  # HDR renditions only: the HDR picture alone
        sdr, hdr_branch = None, output_grid(hdr.hdr_picture(decoded, source), RUNG.fps)
    pictures: dict[str, ffmpeg.nodes.FilterableStream] = {}
    for branch, names in ((sdr, eight_bit), (hdr_branch, ten_bit)):
        if len(names) == 1:
            pictures[names[0]] = branch
        elif names:
            split = branch.filter_multi_output("split", len(names))
            pictures.update({name: split.stream(i) for i, name in enumerate(names)})
    outputs, files = [], {}
    for codec in codecs:
        colour = hdr.color_options(source, codec)
        options: dict[str, object] = {**ENCODERS[codec], **colour.options}
        if codec in hdr.PARAMS_OPTION:
            options[hdr.PARAMS_OPTION[codec]] = colour.params_text({"log-level": "error"} if codec == "hevc" else {})
        options["movflags"] = "+frag_keyframe+empty_moov+default_base_moof"  # fragmented, as CMAF is
        files[codec] = out / f"{codec}.mp4"
        outputs.append(scaled(pictures[codec], RUNG, colour.pix_fmt).output(str(files[codec]), **options))
    command = ffmpeg_command(ffmpeg.merge_outputs(*outputs))
    subprocess.run([modern_ffmpeg(), *command[1:]], check=True, capture_output=True)  # noqa: S603
    return files


def hdr_side_data(path: Path) -> dict[str, tuple[MasteringDisplay | None, ContentLight | None]]:
    """What the container says (MP4 ``mdcv``/``clli``) and what the bitstream says (SEI, metadata OBUs)."""
    return {"stream": hdr_metadata(video_stream(path).get("side_data_list")),
            "frame": hdr_metadata(first_frame_side_data(str(path), FILE_PROTOCOLS, 0))}


def same_display(a: MasteringDisplay | None, b: MasteringDisplay) -> bool:
    """Equal within the coarser of the two codecs' units (AV1: 1/65536 chromaticity, 1/16384 cd/m² at the low
    end; HEVC: 1/50000, 1/10000)."""
    if a is None:
        return False
    pairs = [(a.red, b.red), (a.green, b.green), (a.blue, b.blue), (a.white_point, b.white_point)]
    return (all(abs(p[0] - q[0]) <= 3e-5 and abs(p[1] - q[1]) <= 3e-5 for p, q in pairs)
            and abs(a.max_luminance - b.max_luminance) <= 0.01 and abs(a.min_luminance - b.min_luminance) <= 1e-4)


def test_probe_reads_the_colour_and_the_hdr_metadata(sources):
    pq, hlg, sdr = (probe_file(sources[k]) for k in (PQ, HLG, "sdr"))
    assert (pq.hdr, pq.color_transfer, pq.color_primaries, pq.color_matrix, pq.color_range) == (
        True, PQ, "bt2020", "bt2020nc", "tv")
    assert same_display(pq.mastering_display, HDR10) and pq.content_light == ContentLight(1000, 400)
    assert (hlg.hdr, hlg.color_transfer, hlg.color_primaries, hlg.color_matrix) == (True, HLG, "bt2020", "bt2020nc")
    assert hlg.mastering_display is None and hlg.content_light is None
    assert not sdr.hdr and sdr.mastering_display is None and sdr.content_light is None
    assert sdr.color_transfer not in (PQ, HLG) and sdr.color_primaries != "bt2020"
    assert [hdr.dynamic_range(s, "av1") for s in (pq, hlg, sdr)] == ["PQ", "HLG", "SDR"]
    assert [hdr.cicp(s, "hevc") for s in (pq, hlg, sdr)] == [(9, 16, 9), (9, 18, 9), (1, 1, 1)]
    assert hdr.cicp(pq, "h264") == (1, 1, 1)


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_hdr_kept_in_hevc_and_av1_and_tone_mapped_in_h264(sources, tmp_path, transfer):
    source = probe_file(sources[transfer])
    files = encode(sources[transfer], source, tmp_path, ("h264", "hevc", "av1"))
    source_luma = mean_luma(sources[transfer])
    for codec in ("hevc", "av1"):
        stream = video_stream(files[codec])
        assert (stream["pix_fmt"], stream["color_primaries"], stream["color_transfer"], stream["color_space"],
                stream["color_range"]) == ("yuv420p10le", "bt2020", transfer, "bt2020nc", "tv"), (codec, stream)
        side = hdr_side_data(files[codec])
        if transfer == PQ:  # in the bitstream (SEI / metadata OBUs) always; in the container when ffmpeg writes it
            mastering, light = side["frame"]
            assert same_display(mastering, HDR10) and light == ContentLight(1000, 400), (codec, side)
            stream_mastering, stream_light = side["stream"]
            assert (stream_mastering, stream_light) == (None, None) or (
                same_display(stream_mastering, HDR10) and stream_light == light), (codec, side)
        else:  # HLG: the source has none, so none is made up
            assert side == {"stream": (None, None), "frame": (None, None)}, (codec, side)
        # Scaled without a colour conversion: the same code values on average (a washed-out or tone-mapped
        # picture moves the mean by far more than an encoder's 2 %).
        luma = mean_luma(files[codec])
        assert abs(luma - source_luma) / source_luma < 0.02, (codec, luma, source_luma)
    h264 = video_stream(files["h264"])
    assert (h264["pix_fmt"], h264["color_primaries"], h264["color_transfer"], h264["color_space"]) == (
        "yuv420p", "bt709", "bt709", "bt709"), h264
    assert hdr_side_data(files["h264"]) == {"stream": (None, None), "frame": (None, None)}


def test_an_sdr_source_gets_no_hdr_tags_anywhere(sources, tmp_path):
    source = probe_file(sources["sdr"])
    assert hdr.color_options(source, "av1") == hdr.ColorOptions()
    files = encode(sources["sdr"], source, tmp_path, ("h264", "hevc", "av1"))
    for codec, path in files.items():
        stream = video_stream(path)
        assert stream["pix_fmt"] == "yuv420p", (codec, stream["pix_fmt"])
        tags = {stream.get(k) for k in ("color_primaries", "color_transfer", "color_space")}
        assert not tags & {"bt2020", "bt2020nc", PQ, HLG}, (codec, tags)
        assert hdr_side_data(path) == {"stream": (None, None), "frame": (None, None)}, codec


def test_every_hdr_rendition_gets_the_container_boxes(sources, tmp_path):
    """ffmpeg 9 writes ``mdcv``/``clli`` for a split's first branch only: the init segment of every HDR rendition
    gets them from ``with_hdr_boxes``, and the track still decodes, every frame."""
    source = probe_file(sources[PQ])
    files = encode(sources[PQ], source, tmp_path, ("hevc", "av1"))
    for codec, path in files.items():
        data = path.read_bytes()
        init_end = next(b.end for b in boxes(data) if b.kind == b"moov")
        patched = tmp_path / f"{codec}-boxes.mp4"
        patched.write_bytes(with_hdr_boxes(data[:init_end], source.mastering_display, source.content_light)
                            + data[init_end:])
        mastering, light = hdr_metadata(video_stream(patched).get("side_data_list"))
        assert same_display(mastering, HDR10) and light == ContentLight(1000, 400), codec
        assert with_hdr_boxes(patched.read_bytes(), source.mastering_display, source.content_light) \
            == patched.read_bytes()  # never twice
        frames = [int(video_stream_counted(p)["nb_read_frames"]) for p in (path, patched)]
        assert frames[0] == frames[1] == 60, (codec, frames)


def video_stream_counted(path: Path) -> dict:
    args = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_streams", "-of", "json",
            str(path)]
    result = subprocess.run(args, capture_output=True, text=True, check=True)  # noqa: S603
    assert not result.stderr, result.stderr
    return json.loads(result.stdout)["streams"][0]
