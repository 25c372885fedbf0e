"""Encoder options of the other codecs (SVT-AV1, x265): the same keyframes as the H.264 ladder, their own rate.

Every rendition of every codec has an IDR keyframe (a closed GOP, scene-cut keyframes off) on exactly the frames
the H.264 ladder has one (``ffmpeg.keyframe_expression``: every ``keyframe_seconds`` on the output timeline, or a
chunk's frame-number form), so the CMAF segments of every codec cut on the same 6 s grid and a player switching
codecs or rungs lands on a keyframe.

Rate (bench/codecs.py, VMAF against the H.264 rung on a grainy test pattern, a lecture, Big Buck Bunny 720p and
the 640x272 "bikes" clip): AV1 is capped CRF — a CRF per rung (``AV1_CRF``) under a maximum rate of the rung's
``maxrate_kbps`` and its ``bufsize``; ``rate_factor`` 0.67 puts that cap at the H.264 rung's average rate, so an
AV1 rung does not spend more than H.264's beyond SVT-AV1's overshoot of a cap (up to ~15 % in a 6 s chunk of pure
noise). The bench measured a cap of 0.75x H.264's peak (1.125x its average): it bound only on heavy grain, where
AV1 then scored above H.264, and on a noisy test pattern AV1's 360p came out 2 % larger than H.264's. No single VBR
rate matched H.264's VMAF on every clip: the factor needed ran from 0.13 (lecture) to 0.9 (Big Buck Bunny's 720p,
an already compressed source), and the one that saved 45 % lost 2.5–2.9 VMAF on the real clips; the capped CRF
kept every rung of every clip within 0.5 of H.264 (or above) and let the bytes follow the content (23–81 % fewer).
SVT-AV1 refuses a maximum rate outside CRF mode anyway. x265 is constrained VBR like x264 (``b:v``/``maxrate``/
``bufsize``) at 0.65 × the H.264 rung: within 0.1 VMAF, 20–40 % fewer bytes. The playlists measure what was
written.
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
# SVT-AV1 10 adds 0.76–0.95x the H.264 ladder's CPU to a run on typical content (1.11x on heavy grain; 9: 1.2–1.7x,
# 11: 0.7–0.8x but ~1 VMAF lower at the same CRF); x265 superfast is its cheapest preset and, at a fixed rate, scores
# at least what veryfast/faster do (which cost 25 % more CPU).
PRESETS: dict[str, object] = {"av1": 10, "hevc": "superfast"}
# AV1's CRF per rung, by the rendition's short side (at least this many lines → this CRF), measured by
# bench/codecs.py as the highest CRF keeping each rung within 0.5 VMAF of H.264 on every clip (720p is held by Big
# Buck Bunny, a top rung re-encoding an H.264 source nearly transparently; the cap bounds its bytes).
AV1_CRF: tuple[tuple[int, int], ...] = ((1080, 41), (720, 25), (480, 32), (0, 34))
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
        options.update({"c:v": "libsvtav1", "preset": PRESETS["av1"], "crf": av1_crf(rendition.width, rendition.height),
                        "maxrate": f"{rendition.maxrate_kbps}k", "bufsize": f"{rendition.bufsize_kbits}k", "g": gop,
                        "force_key_frames": keyframes,
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


def av1_crf(width: int, height: int) -> int:
    """The AV1 CRF of a rendition of this size (``AV1_CRF``)."""
    short = min(width, height)
    return next(crf for lines, crf in AV1_CRF if short >= lines)


def thread_params(codec: str, threads: int) -> dict[str, object]:
    """``EncoderSettings.threads`` in each encoder's own terms: neither libsvtav1 nor libx265 applies ffmpeg's
    ``-threads`` (measured: SVT-AV1's level of parallelism and x265's pool stayed at the machine's cores)."""
    if not threads:
        return {}
    return {"lp": threads} if codec == "av1" else {"pools": threads}
