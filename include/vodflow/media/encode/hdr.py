"""HDR kept in the 10-bit codecs: which dynamic range a source has, the picture its HDR renditions start from,
and the colour options (tags, mastering display, content light) their encoders write. Pure (ffmpeg graphs and
option dicts; nothing runs here).

The H.264 ladder stays SDR (``ffmpeg.normalize_picture`` tone-maps it) as the fallback; an SDR source never gets
HDR tags. The colour is written twice on purpose: as ffmpeg's output options (the container's ``colr`` box and
what a muxer reads) and as the encoder's own parameters (the bitstream's VUI / sequence header, and the SEI /
metadata OBUs that carry the mastering display and content light). ffmpeg 9 would copy the first frame's HDR side
data into the encoder by itself, but not through every filter graph (a ``split`` branch loses it), so it is
never left to chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import ffmpeg

from vodflow.media.encode.codecs import CODECS
from vodflow.media.encode.ffmpeg import normalize_picture, output_grid, tone_mapped
from vodflow.media.source.colour import HLG_TRANSFER, PQ_TRANSFER
from vodflow.media.source.info import ContentLight, MasteringDisplay, SourceInfo

SDR, PQ, HLG = "SDR", "PQ", "HLG"  # HLS VIDEO-RANGE values
HDR_PIX_FMT = "yuv420p10le"
RANGES = {PQ_TRANSFER: PQ, HLG_TRANSFER: HLG}  # ffprobe's transfer name → VIDEO-RANGE
TRANSFERS = {PQ: PQ_TRANSFER, HLG: HLG_TRANSFER}  # VIDEO-RANGE → ffmpeg's / x265's transfer name
# ITU-T H.273 code points (colour primaries, transfer characteristics, matrix coefficients): DASH's
# ``urn:mpeg:mpegB:cicp:*`` properties, AV1's sequence header and SVT-AV1's parameters.
CICP = {SDR: (1, 1, 1), PQ: (9, 16, 9), HLG: (9, 18, 9)}
PARAMS_OPTION = {"hevc": "x265-params", "av1": "svtav1-params"}  # the ffmpeg option ``ColorOptions.params`` go in


@dataclass(frozen=True)
class ColorOptions:
    """What an HDR (or SDR) rendition's encoder is given: ffmpeg output options (pixel format, colour tags) and
    encoder-private ``key=value`` parameters (``x265-params`` / ``svtav1-params``: mastering display, CLL)."""

    options: dict[str, object] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def pix_fmt(self) -> str:
        """The pixel format the rendition is scaled to (``ffmpeg.scaled(..., pix_fmt=)``)."""
        return str(self.options.get("pix_fmt", "yuv420p"))

    def params_text(self, own: Mapping[str, object] | None = None) -> str:
        """The encoder's ``-x265-params`` / ``-svtav1-params`` value: ``own`` (the encode's rate control, GOP…)
        and these colour parameters, ``:``-separated. Every value here is a number or a fixed name."""
        return ":".join(f"{key}={value}" for key, value in {**(own or {}), **self.params}.items())


def source_range(source: SourceInfo) -> str:
    """The source's own dynamic range: PQ or HLG from its transfer, else SDR (a source stored before its transfer
    was recorded is treated as SDR: tone-mapped everywhere, as before)."""
    return RANGES.get(source.color_transfer, SDR) if source.hdr else SDR


def dynamic_range(source: SourceInfo, codec: str) -> str:
    """The VIDEO-RANGE of ``codec``'s renditions of ``source``: SDR unless the source is HDR and the codec
    keeps it (the 10-bit codecs; H.264's ladder is tone-mapped)."""
    return source_range(source) if CODECS[codec].hdr else SDR


def cicp(source: SourceInfo, codec: str) -> tuple[int, int, int]:
    """(colour primaries, transfer characteristics, matrix coefficients) of ``codec``'s renditions as ITU-T
    H.273 code points: (1, 1, 1) BT.709 SDR, (9, 16, 9) BT.2020 PQ, (9, 18, 9) BT.2020 HLG."""
    return CICP[dynamic_range(source, codec)]


def color_options(source: SourceInfo, codec: str) -> ColorOptions:
    """The colour options of ``codec``'s renditions of ``source``: for an HDR rendition 10-bit BT.2020 with the
    source's transfer and its mastering display / content light (HLG needs neither: carried when present);
    none for SDR (today's tags)."""
    rng = dynamic_range(source, codec)
    if rng == SDR:
        return ColorOptions()
    # No Dolby Vision: a phone's HLG or a camera's PQ often carries a DV RPU, which ffmpeg 9's encoders would
    # re-encode by default ("auto"), for some renditions only (a split passes it to one branch), making them DV
    # streams whose codec strings and VIDEO-RANGE would not be what the master says. HDR10 / HLG is what we deliver.
    options: dict[str, object] = {"pix_fmt": HDR_PIX_FMT, "color_primaries": "bt2020", "color_trc": TRANSFERS[rng],
                                  "colorspace": "bt2020nc", "color_range": "tv", "dolbyvision": 0}
    md, cll = source.mastering_display, source.content_light
    if codec == "hevc":
        # No ``repeat-headers``: the track is ``hvc1`` (Apple requires it for HLS fMP4), whose VPS/SPS/PPS are in the
        # init segment's ``hvcC`` only. x265 writes the mastering display / CLL SEI on every IDR without it, and the
        # hvcC keeps them as declarative SEI (measured with ffmpeg 9: the same bytes with or without the flag, as
        # its mp4 muxer drops parameter sets from ``hvc1`` samples; a muxer that did not would make them ``hev1``).
        params = {"colorprim": "bt2020", "transfer": TRANSFERS[rng], "colormatrix": "bt2020nc", "range": "limited"}
        if rng == PQ:
            params["hdr10"] = "1"
        if md:
            params["master-display"] = x265_master_display(md)
        if cll:
            params["max-cll"] = content_light_text(cll)
    elif codec == "av1":
        primaries, transfer, matrix = CICP[rng]
        params = {"color-primaries": str(primaries), "transfer-characteristics": str(transfer),
                  "matrix-coefficients": str(matrix), "color-range": "0"}
        if md:
            params["mastering-display"] = svtav1_mastering_display(md)
        if cll:
            params["content-light"] = content_light_text(cll)
    else:  # pragma: no cover - a new 10-bit codec needs its encoder's syntax here
        raise ValueError(f"no HDR parameters for codec {codec!r}")
    return ColorOptions(options=options, params=params)


def st2086_units(md: MasteringDisplay) -> tuple[int, ...]:
    """The mastering display as the HEVC SEI and the MP4 ``mdcv`` box store it: green, blue, red and white point
    (x, y) in 0.00002 units, then max and min luminance in 0.0001 cd/m²."""
    xy = [round(v * 50000) for point in (md.green, md.blue, md.red, md.white_point) for v in point]
    return (*xy, round(md.max_luminance * 10000), round(md.min_luminance * 10000))


def x265_master_display(md: MasteringDisplay) -> str:
    """x265's ``master-display``: ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)`` in ``st2086_units``."""
    gx, gy, bx, by, rx, ry, wx, wy, high, low = st2086_units(md)
    return f"G({gx},{gy})B({bx},{by})R({rx},{ry})WP({wx},{wy})L({high},{low})"


def svtav1_mastering_display(md: MasteringDisplay) -> str:
    """SVT-AV1's ``mastering-display``: the same order as x265's, in natural units (chromaticities 0–1, cd/m²)."""
    def xy(point: tuple[float, float]) -> str:
        return f"({point[0]:.5f},{point[1]:.5f})"
    return (f"G{xy(md.green)}B{xy(md.blue)}R{xy(md.red)}WP{xy(md.white_point)}"
            f"L({md.max_luminance:.4f},{md.min_luminance:.5f})")


def content_light_text(cll: ContentLight) -> str:
    return f"{cll.max_cll},{cll.max_fall}"


def ten_bit(picture: ffmpeg.nodes.FilterableStream, source: SourceInfo) -> ffmpeg.nodes.FilterableStream:
    """An HDR picture as limited-range ``yuv420p10le``, its BT.2020 colours and transfer as they were: a
    YUV-to-YUV conversion (chroma subsampling, bit depth, range), no matrix or transfer touched."""
    if source.color_range == "pc":
        picture = picture.filter("scale", out_range="tv")
    return picture.filter("format", HDR_PIX_FMT)


def hdr_picture(video: ffmpeg.nodes.FilterableStream, source: SourceInfo) -> ffmpeg.nodes.FilterableStream:
    """The 10-bit picture an HDR rendition starts from: the decoded source, deinterlaced / still-held as every
    output is (``normalize_picture``), not tone-mapped."""
    return ten_bit(normalize_picture(video, source, tonemap=False), source)


def split_dynamic_range(video: ffmpeg.nodes.FilterableStream, source: SourceInfo, fps: str | None = None, *,
                        from_zero: bool = True
                        ) -> tuple[ffmpeg.nodes.FilterableStream, ffmpeg.nodes.FilterableStream | None]:
    """(SDR picture, HDR picture) from one decoded picture, on the output grid when ``fps`` is given (as
    ``output_grid``). The deinterlace and the frame grid run once; only the SDR branch is tone-mapped. The HDR
    picture is None when the source is SDR: then every codec's renditions take the SDR one.

    SDR feeds H.264, the poster and thumbnails, and any codec whose ``dynamic_range`` is SDR; HDR feeds the
    10-bit codecs' renditions (scaled with ``pix_fmt=color_options(...).pix_fmt``)."""
    picture = normalize_picture(video, source, tonemap=False)
    if fps:
        picture = output_grid(picture, fps, from_zero=from_zero)
    if source_range(source) == SDR:
        return (tone_mapped(picture) if source.hdr else picture), None
    branches = picture.filter_multi_output("split", 2)
    return tone_mapped(branches.stream(0)), ten_bit(branches.stream(1), source)
