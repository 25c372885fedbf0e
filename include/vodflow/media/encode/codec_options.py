"""Encoder options of the other codecs (SVT-AV1, x265): the same keyframes as the H.264 ladder, their own rate.

Every rendition of every codec has an IDR keyframe (a closed GOP, scene-cut keyframes off) on exactly the frames
the H.264 ladder has one (``ffmpeg.keyframe_expression``: every ``keyframe_seconds`` on the output timeline, or a
chunk's frame-number form), so the CMAF segments of every codec cut on the same 6 s grid and a player switching
codecs or rungs lands on a keyframe.

Rate: SVT-AV1 refuses a maximum rate outside CRF mode ("Max Bitrate only supported with CRF mode"), so AV1 is
one-pass VBR at the rung's ``video_kbps`` with its ``bufsize`` (SVT-AV1's own buffer model); x265 is constrained
VBR like x264 (``b:v``/``maxrate``/``bufsize``). A VBR rung lands near its planned bits, which is what the ladder's
``rate_factor`` (measured per codec) assumes; a capped CRF would not. The playlists measure what was written.
Presets are one constant per codec (``PRESETS``): bench/codecs.py measures them. ``EncoderSettings.threads``
becomes SVT-AV1's ``lp`` and x265's ``pools`` (both ignore ffmpeg's ``-threads``).
No Airflow, S3 or database.
"""

from __future__ import annotations

import math
from fractions import Fraction

from vodflow.media.encode.hdr import ColorOptions
from vodflow.media.encode.ladder import Rendition
from vodflow.media.options import EncoderSettings

# The encoder preset of each codec: SVT-AV1's 0 (slowest) … 13, x265's names. Set from bench/codecs.py.
PRESETS: dict[str, object] = {"av1": 10, "hevc": "faster"}
SDR_PIXEL_FORMAT = "yuv420p"
HDR_PIXEL_FORMAT = "yuv420p10le"
# What ``fmp4`` muxes: parameter sets in the init segment only (``hvc1``, what Apple's players require).
HEVC_TAG = "hvc1"


def pixel_format(rendition: Rendition) -> str:
    """8-bit for SDR, 10-bit for an HDR rendition (the codecs that keep HDR are 10-bit ones)."""
    return SDR_PIXEL_FORMAT if rendition.dynamic_range == "SDR" else HDR_PIXEL_FORMAT


def max_gop(rendition: Rendition, settings: EncoderSettings) -> int:
    """A GOP longer than the forced keyframe period, so the encoder never adds a keyframe of its own."""
    return 2 * math.ceil(float(Fraction(rendition.fps)) * settings.keyframe_seconds)


def _params(values: dict[str, object]) -> str:
    return ":".join(f"{k}={v}" for k, v in values.items())


def cmaf_video_options(rendition: Rendition, settings: EncoderSettings, keyframes: str,
                       color: ColorOptions | None = None) -> dict[str, object]:
    """The encoder options of one AV1 or HEVC rendition. ``keyframes``: the H.264 ladder's ``force_key_frames``
    value for this command shape; ``color``: ``hdr.color_options`` (empty for SDR)."""
    color = color or ColorOptions()
    gop = max_gop(rendition, settings)
    # SDR: the frames' own colour properties, as the H.264 ladder's (an HDR source's are BT.709 once tone-mapped).
    options: dict[str, object] = {"pix_fmt": pixel_format(rendition)}
    if rendition.codec == "av1":
        params: dict[str, object] = {"irefresh-type": 2, "scd": 0,  # 2: closed GOP (key frames)
                                     **thread_params("av1", settings.threads), **color.params}
        options.update({"c:v": "libsvtav1", "preset": PRESETS["av1"], "b:v": f"{rendition.video_kbps}k",
                        "bufsize": f"{rendition.bufsize_kbits}k", "g": gop, "force_key_frames": keyframes,
                        "svtav1-params": _params(params)})
    elif rendition.codec == "hevc":
        params = {"scenecut": 0, "open-gop": 0, "keyint": gop, "min-keyint": 1, "log-level": "error",
                  **thread_params("hevc", settings.threads), **color.params}
        options.update({"c:v": "libx265", "preset": PRESETS["hevc"], "b:v": f"{rendition.video_kbps}k",
                        "maxrate": f"{rendition.maxrate_kbps}k", "bufsize": f"{rendition.bufsize_kbits}k",
                        "force_key_frames": keyframes, "forced-idr": 1, "x265-params": _params(params),
                        "tag:v": HEVC_TAG})
    else:
        raise ValueError(f"{rendition.name}: no CMAF encoder options for codec {rendition.codec!r}")
    options.update(color.options)  # HDR: its pixel format, BT.2020 tags and transfer
    options["max_muxing_queue_size"] = 4096
    return options


def thread_params(codec: str, threads: int) -> dict[str, object]:
    """``EncoderSettings.threads`` in each encoder's own terms: neither libsvtav1 nor libx265 applies ffmpeg's
    ``-threads`` (measured: SVT-AV1's level of parallelism and x265's pool stayed at the machine's cores)."""
    if not threads:
        return {}
    return {"lp": threads} if codec == "av1" else {"pools": threads}
