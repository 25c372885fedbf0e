"""HDR through the whole pipeline (issue 24, Build 4): an HDR10 (PQ, with mastering display and content light) and an
HLG source, and an SDR one, run through prepare → transcode → publish (S3 over HTTP, the Postgres catalog) with
H.264, AV1 and HEVC; what was published is read back from S3. The AV1/HEVC init + segments are 10-bit BT.2020 with
the source's transfer and its HDR10 metadata (the container's ``mdcv``/``clli`` and the bitstream's, per ffprobe),
the CMAF master says ``VIDEO-RANGE=PQ``/``HLG`` on them and ``SDR`` on H.264, the HDR AV1 CODECS carries the colour
fields, the MPD's HDR sets the cicp EssentialProperty; the H.264 TS segments are BT.709 without HDR side data. An SDR
source gets no HDR tag anywhere. The HEVC tracks are ``hvc1`` with their parameter sets in the init segment only."""

from __future__ import annotations

import json
import struct
import subprocess
import uuid
from pathlib import Path

import m3u8
import pytest

from vodflow import layout, pipeline
from vodflow.devtools.samples import SampleSpec, make_hdr_sample, make_sample
from vodflow.media.encode import hdr
from vodflow.media.encode.codecs import codec_ladder
from vodflow.media.package import dash, fmp4
from vodflow.media.source.colour import first_frame_side_data, hdr_metadata
from vodflow.media.source.info import ContentLight, MasteringDisplay
from vodflow.media.source.inputs import FILE_PROTOCOLS

from .helpers import upload

pytestmark = pytest.mark.integration

PQ, HLG = "smpte2084", "arib-std-b67"
CODECS = ("av1", "hevc")  # beside H.264
HDR10 = MasteringDisplay(red=(0.68, 0.32), green=(0.265, 0.69), blue=(0.15, 0.06), white_point=(0.3127, 0.329),
                         max_luminance=1000.0, min_luminance=0.005)  # samples.HDR10_MASTER_DISPLAY
HDR10_LIGHT = ContentLight(1000, 400)  # samples.HDR10_MAX_CLL
CICP_SCHEMES = ("urn:mpeg:mpegB:cicp:ColourPrimaries", "urn:mpeg:mpegB:cicp:TransferCharacteristics",
                "urn:mpeg:mpegB:cicp:MatrixCoefficients")
HEVC_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS NAL unit types
SEI_MASTERING, SEI_LIGHT = 137, 144  # HEVC prefix SEI payload types


def run_hdr(services: pipeline.Services, params: dict, run_id: str):
    """Every step, as ``helpers.run_all``, with H.264, AV1 and HEVC asked for in the request's ``codecs``: the plan
    and the catalog rows are ``prepare``'s own, each other codec in the dynamic range of the probed source."""
    params = {**params, "codecs": ["h264", *CODECS]}
    job, probed, plan, items = pipeline.prepare(params, run_id, lambda step, job: None, services)
    expected = tuple(r for c in CODECS for r in codec_ladder(plan.renditions, c, hdr.dynamic_range(probed, c)))
    assert sorted(plan.cmaf_renditions, key=lambda r: r.name) == sorted(expected, key=lambda r: r.name)
    rows = services.catalog.get_renditions(job.video_id, job.version)
    assert {r["name"]: (r["codec"], r["dynamic_range"]) for r in rows} == {
        **{n: ("h264", "SDR") for n in plan.names}, **{r.name: (r.codec, r.dynamic_range) for r in expected}}
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items], results, services)
    return job, plan


def done(services: pipeline.Services, job) -> set[str]:
    """The renditions reported done (the catalog's rows of the other codecs are ``prepare``'s, once it plans them)."""
    return {e["detail"]["name"] for e in services.catalog.get_events(job.video_id)
            if e["kind"] == "rendition" and e["detail"].get("status") == "done"}


def ffprobe_stream(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json",  # noqa: S603
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


def side_data(path: Path) -> tuple[tuple, tuple]:
    """(the container's, the first frame's) (mastering display, content light)."""
    return (hdr_metadata(ffprobe_stream(path).get("side_data_list")),
            hdr_metadata(first_frame_side_data(str(path), FILE_PROTOCOLS, 0)))


def same_display(a: MasteringDisplay | None, b: MasteringDisplay) -> bool:
    """Equal within the coarser of the two codecs' units (AV1: 1/65536 chromaticity; HEVC: 1/50000)."""
    if a is None:
        return False
    pairs = [(a.red, b.red), (a.green, b.green), (a.blue, b.blue), (a.white_point, b.white_point)]
    return (all(abs(p[0] - q[0]) <= 3e-5 and abs(p[1] - q[1]) <= 3e-5 for p, q in pairs)
            and abs(a.max_luminance - b.max_luminance) <= 0.01 and abs(a.min_luminance - b.min_luminance) <= 1e-4)


def sample_entry(init: bytes) -> fmp4.Box:
    moov = next(b for b in fmp4.boxes(init) if b.kind == b"moov")
    stsd = fmp4.find(init, moov, b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    return next(fmp4.boxes(init, stsd.body + 8, stsd.end))


def sample_entry_boxes(init: bytes) -> set[bytes]:
    """The kinds of the video sample entry's child boxes (``hvcC``/``av1C``, ``colr``, ``mdcv``, ``clli``…)."""
    entry = sample_entry(init)
    return {b.kind for b in fmp4.boxes(init, entry.body + 78, entry.end)}  # 78: the VisualSampleEntry fields


def first_sample_nals(segment: bytes) -> list[tuple[int, int | None]]:
    """(NAL unit type, SEI payload type or None) of each NAL of the first sample of the first fragment of an HEVC
    media segment (4-byte lengths, as ours are written)."""
    moof = next(b for b in fmp4.boxes(segment) if b.kind == b"moof")
    traf = fmp4.child(segment, moof, b"traf")
    trun, tfhd = fmp4.child(segment, traf, b"trun"), fmp4.child(segment, traf, b"tfhd")
    flags = int.from_bytes(segment[trun.body + 1:trun.body + 4], "big")
    assert flags & 0x001, "no data offset in the trun"
    pos = trun.body + 8
    start = moof.offset + struct.unpack_from(">i", segment, pos)[0]
    pos += 4 + (4 if flags & 0x004 else 0) + (4 if flags & 0x100 else 0)
    if flags & 0x200:
        size = struct.unpack_from(">I", segment, pos)[0]
    else:  # the tfhd's default sample size
        tfhd_flags = int.from_bytes(segment[tfhd.body + 1:tfhd.body + 4], "big")
        offset = tfhd.body + 8 + sum(w for bit, w in ((0x01, 8), (0x02, 4), (0x08, 4)) if tfhd_flags & bit)
        size = struct.unpack_from(">I", segment, offset)[0]
    nals, end = [], start + size
    while start < end:
        length = struct.unpack_from(">I", segment, start)[0]
        kind = (segment[start + 4] >> 1) & 0x3F
        nals.append((kind, segment[start + 6] if kind == 39 else None))
        start += 4 + length
    return nals


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hdr-sources")
    return {PQ: Path(make_hdr_sample(str(root / "pq.mp4"), PQ, duration=3.0)),
            HLG: Path(make_hdr_sample(str(root / "hlg.mp4"), HLG, duration=3.0)),
            "sdr": Path(make_sample(str(root / "sdr.mp4"), SampleSpec(640, 360, 3.0, "30"))),
            # Two chunks (6 s and 4 s: cut on the 6 s segment grid, a tail over 3 s a chunk of its own), small.
            "pq-long": Path(make_hdr_sample(str(root / "pq-long.mp4"), PQ, 320, 180, duration=10.0))}


def published(services, tmp_path: Path, source: Path, name: str, chunk_seconds: int | None = None):
    params = {"source": upload(services, source, f"uploads/{uuid.uuid4().hex[:6]}/{name}.mp4"), "outputs": ["hls"]}
    if chunk_seconds:
        params["chunk_seconds"] = chunk_seconds
    job, plan = run_hdr(services, params, f"run-hdr-{name}-{chunk_seconds}")
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    prefix = layout.version_prefix(job.video_id, job.version)
    get = services.storage.get_bytes

    def track_file(name: str) -> Path:
        """A published CMAF video track's init and segments, as one file."""
        track = json.loads(get(f"{prefix}cmaf/{name}/track.json"))
        path = tmp_path / f"{name}.mp4"
        path.write_bytes(b"".join(get(f"{prefix}cmaf/{name}/{uri}")
                                  for uri in ["init.mp4", *(s["uri"] for s in track["segments"])]))
        return path

    master_text = get(f"{prefix}cmaf/master.m3u8").decode()
    mpd = dash.parse_mpd(get(f"{prefix}cmaf/manifest.mpd").decode())
    return job, plan, prefix, track_file, master_text, mpd


@pytest.mark.parametrize(("transfer", "chunk_seconds"), [(PQ, None), (HLG, None), (PQ, 6)],
                         ids=["hdr10", "hlg", "hdr10-chunked"])
def test_hdr_is_kept_in_av1_and_hevc_and_h264_stays_sdr(services, sources, tmp_path, transfer, chunk_seconds):
    rng = hdr.RANGES[transfer]
    job, plan, prefix, track_file, master_text, mpd = published(
        services, tmp_path, sources["pq-long" if chunk_seconds else transfer], rng.lower(), chunk_seconds)
    assert plan.chunks == (2 if chunk_seconds else 0)
    assert done(services, job) == set(plan.all_names)
    get = services.storage.get_bytes
    others = plan.cmaf_renditions
    assert {r.codec for r in others} == set(CODECS) and {r.dynamic_range for r in others} == {rng}
    # The 10-bit renditions: BT.2020, the source's transfer, its HDR10 metadata in the container and bitstream.
    for rendition in others:
        path = track_file(rendition.name)
        stream = ffprobe_stream(path)
        assert (stream["pix_fmt"], stream["color_primaries"], stream["color_transfer"], stream["color_space"],
                stream["color_range"]) == ("yuv420p10le", "bt2020", transfer, "bt2020nc", "tv"), stream
        container, frame = side_data(path)
        entry_boxes = sample_entry_boxes(get(f"{prefix}cmaf/{rendition.name}/init.mp4"))
        assert ({b"mdcv", b"clli"} <= entry_boxes) == (transfer == PQ), (rendition.name, entry_boxes)
        if transfer == PQ:
            for mastering, light in (container, frame):
                assert same_display(mastering, HDR10) and light == HDR10_LIGHT, (rendition.name, container, frame)
        else:  # HLG: the source has none, none is made up
            assert container == frame == (None, None), rendition.name
    # HEVC: hvc1, whose parameter sets are in the init's hvcC only; the HDR10 SEI still in every segment's IDR.
    hevc = next(r for r in others if r.codec == "hevc")
    track = json.loads(get(f"{prefix}cmaf/{hevc.name}/track.json"))
    assert sample_entry(get(f"{prefix}cmaf/{hevc.name}/init.mp4")).kind == b"hvc1"
    for segment in track["segments"]:
        nals = first_sample_nals(get(f"{prefix}cmaf/{hevc.name}/{segment['uri']}"))
        assert not {kind for kind, _ in nals} & HEVC_PARAMETER_SETS, (segment["uri"], nals)
        assert nals[-1][0] in (19, 20), nals  # an IDR
        seis = {payload for kind, payload in nals if kind == 39}
        assert (seis >= {SEI_MASTERING, SEI_LIGHT}) == (transfer == PQ), (segment["uri"], nals)

    # The CMAF master: VIDEO-RANGE per codec; the HDR AV1 CODECS with its colour fields.
    master = m3u8.loads(master_text)
    ranges = {p.uri.split("/")[0]: (p.stream_info.video_range, p.stream_info.codecs) for p in master.playlists
              if p.stream_info.resolution}
    for name in plan.names:
        assert ranges[name][0] == "SDR" and ranges[name][1].startswith("avc1."), ranges
    cicp = ".".join(f"{v:02d}" for v in hdr.CICP[rng])
    for rendition in others:
        video_range, codecs = ranges[rendition.name]
        assert video_range == rng, ranges
        if rendition.codec == "av1":
            assert codecs.split(",")[0].startswith("av01.0.") and codecs.split(",")[0].endswith(
                f"M.10.0.110.{cicp}.0"), codecs
        else:
            assert codecs.startswith("hvc1.2.4."), codecs  # Main 10
    iframes = {p.uri.split("/")[0]: p.iframe_stream_info.video_range for p in master.iframe_playlists}
    assert {iframes[r.name] for r in others} == {rng} and {iframes[n] for n in plan.names} == {"SDR"}
    for family, expected in (("h264", "SDR"), *((c, rng) for c in CODECS)):  # each codec's own master
        own = m3u8.loads(get(f"{prefix}cmaf/master-{family}.m3u8").decode())
        assert {p.stream_info.video_range for p in own.playlists if p.stream_info.resolution} == {expected}, family
    # The MPD: the cicp EssentialProperty on the HDR sets only.
    for adaptation in mpd.periods[0].adaptation_sets:
        if adaptation.content_type != "video":
            continue
        names = {r.id for r in adaptation.representations}
        props = {(p.scheme_id_uri, p.value) for p in adaptation.essential_properties or []}
        if names <= set(plan.names):
            assert not props, names
        else:
            assert names <= {r.name for r in others}
            assert props == set(zip(CICP_SCHEMES, (str(v) for v in hdr.CICP[rng]), strict=True)), props
    # The H.264 ladder, TS and its CMAF remux: tone-mapped BT.709, no HDR side data or boxes.
    for name in plan.names:
        ts = tmp_path / f"{name}.ts"
        ts.write_bytes(get(f"{prefix}hls/{name}/{_first_ts_segment(get(f'{prefix}hls/{name}/index.m3u8'))}"))
        for path in (ts, track_file(name)):
            stream = ffprobe_stream(path)
            assert (stream["pix_fmt"], stream.get("color_primaries"), stream.get("color_transfer"),
                    stream.get("color_space")) == ("yuv420p", "bt709", "bt709", "bt709"), (path.name, stream)
            assert side_data(path) == ((None, None), (None, None)), path.name
        assert not sample_entry_boxes(get(f"{prefix}cmaf/{name}/init.mp4")) & {b"mdcv", b"clli"}


def _first_ts_segment(playlist: bytes) -> str:
    return m3u8.loads(playlist.decode()).segments[0].uri


def test_an_sdr_source_gets_no_hdr_tag_anywhere(services, sources, tmp_path):
    job, plan, prefix, track_file, master_text, mpd = published(services, tmp_path, sources["sdr"], "sdr")
    get = services.storage.get_bytes
    assert done(services, job) == set(plan.all_names)
    assert {r.dynamic_range for r in plan.cmaf_renditions} == {"SDR"}
    master = m3u8.loads(master_text)
    assert {p.stream_info.video_range for p in master.playlists if p.stream_info.resolution} == {"SDR"}
    assert {p.iframe_stream_info.video_range for p in master.iframe_playlists} == {"SDR"}
    for family in ("h264", *CODECS):
        master_text += get(f"{prefix}cmaf/master-{family}.m3u8").decode()
    assert "VIDEO-RANGE=PQ" not in master_text and "VIDEO-RANGE=HLG" not in master_text
    for rendition in plan.cmaf_renditions:
        codec = next(p.stream_info.codecs for p in master.playlists if p.uri.startswith(f"{rendition.name}/"))
        if rendition.codec == "av1":  # no colour fields: av01.P.LLT.DD
            assert codec.split(",")[0].count(".") == 3, codec
    for adaptation in mpd.periods[0].adaptation_sets:
        assert not adaptation.essential_properties, adaptation.id
    for rendition in plan.cmaf_renditions:
        path = track_file(rendition.name)
        stream = ffprobe_stream(path)
        assert stream["pix_fmt"] == "yuv420p", stream
        assert not sample_entry_boxes(get(f"{prefix}cmaf/{rendition.name}/init.mp4")) & {b"mdcv", b"clli"}
        tags = {stream.get(k) for k in ("color_primaries", "color_transfer", "color_space")}
        assert not tags & {"bt2020", "bt2020nc", PQ, HLG}, (rendition.name, tags)
        assert side_data(path) == ((None, None), (None, None)), rendition.name
