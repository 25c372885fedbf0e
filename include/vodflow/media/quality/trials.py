"""The per-title probe: the rate and the VMAF of each rung at two qualities, on samples of the source, and the
VMAF each rung cannot exceed (its size's ceiling).

What it measures must predict what the whole video scores (bench/per_title.py prints both), so it samples in time
only, not in space:

- in time: three 0.4 s windows spread over the source (20/50/80 %), each decoded once;
- in space: the whole picture at the top rung's size. A crop is no sample of a picture: a ninth of it, from one
  place per window, weighed a lecture's small moving speaker three times too much (rates 2.7x the whole
  picture's), and VMAF is not local (its features are pooled over four scales, so a 214x90 crop of a 640x272
  picture scored 86 where the whole scored 96). Only a picture above ``max_pixels`` (1080p) is cropped, to that
  many pixels, from a different place per window (top left, centre, bottom right);
- each rung's picture is encoded by x264 (the pipeline's preset) at two constant qualities (``crfs``) — constant
  quality, because a 0.4 s window is far too short for a bitrate target to settle — and scored (libvmaf, every
  ``subsample``-th frame) against the reference, upscaled bicubic as the published renditions are. Its rate is
  read from the H.264 stream, with the window's IDR frame counted as one per ``keyframe_seconds`` (the final
  encode's GOP), not one per window;
- each rung's picture, scaled to its size and back without encoding, is scored too: the VMAF no rate can buy at
  that size (``RungTrial.ceiling_vmaf``; ~97 for a still slide even at full size, ~80 for a lecture's 480p).

``per_title.quality_ladder`` turns the scores into the ladder. No Airflow, S3 or database.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg

from vodflow import errors
from vodflow.errors import BadInput
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import normalize_picture, output_grid
from vodflow.media.encode.ladder import Rendition, even
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.options import EncoderSettings
from vodflow.media.quality.per_title import RungTrial
from vodflow.media.quality.vmaf import Distorted, VmafScore, sampled_pairs, score
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import source_input

log = logging.getLogger(__name__)

WINDOW_POSITIONS = (0.2, 0.5, 0.8)  # fractions of the source (beginnings and ends are often titles or black)
CROP_CORNERS = (0.0, 0.5, 1.0)  # where each window's crop (if any) starts, fractions of the room left around it
REFERENCE_FILE = "reference.nut"


@dataclass(frozen=True)
class ProbeSettings:
    window_seconds: float = 0.4
    subsample: int = 4  # libvmaf scores every Nth frame
    crfs: tuple[int, int] = (26, 16)  # the two trial qualities: the cheaper one first
    max_pixels: int = 1920 * 1080  # a larger top rung is probed on a crop of this many pixels


def sample_windows(duration: float, length: float) -> list[tuple[float, float]]:
    """(start, length) of each window: spread over the source, or its start when it is too short for that."""
    if duration < len(WINDOW_POSITIONS) * length * 2:
        return [(0.0, min(duration, length))]
    return [(round(position * (duration - length), 3), length) for position in WINDOW_POSITIONS]


def crop_box(width: int, height: int, index: int, max_pixels: int = ProbeSettings.max_pixels
             ) -> tuple[int, int, int, int]:
    """(x, y, w, h) of window ``index``'s sample of a ``width`` x ``height`` picture: all of it, or for a picture
    above ``max_pixels`` a crop of that many pixels (even-sized), from a different place per window."""
    if width * height <= max_pixels:
        return 0, 0, width, height
    fraction = math.sqrt(max_pixels / (width * height))
    w, h = min(width, even(width * fraction)), min(height, even(height * fraction))
    corner = CROP_CORNERS[index % len(CROP_CORNERS)]
    return min(even((width - w) * corner), width - w), min(even((height - h) * corner), height - h), w, h


def trial_size(rendition: Rendition, top: Rendition, crop_w: int, crop_h: int) -> tuple[int, int]:
    """A rung's trial picture: the crop scaled as the rung scales the top rendition."""
    return even(crop_w * rendition.width / top.width), even(crop_h * rendition.height / top.height)


def reference_crop(src: str, source: SourceInfo, top: Rendition, start: float, length: float, index: int,
                   max_pixels: int = ProbeSettings.max_pixels) -> ffmpeg.nodes.FilterableStream:
    """The window's reference: the source on the output frame grid, at the top rung's size (cropped if larger than
    ``max_pixels``)."""
    x, y, w, h = crop_box(top.width, top.height, index, max_pixels)
    picture = output_grid(normalize_picture(source_input(src, ss=f"{start:.3f}", t=f"{length:.3f}")["v:0"], source),
                          top.fps)
    if (source.width, source.height) != (top.width, top.height):
        picture = picture.filter("scale", top.width, top.height, flags="lanczos")
    return picture if (w, h) == (top.width, top.height) else picture.filter("crop", w, h, x, y)


def trial_command(reference: ffmpeg.nodes.FilterableStream, renditions: list[Rendition], crop: tuple[int, int],
                  crfs: tuple[int, ...], settings: EncoderSettings, out_dir: str) -> list[str]:
    """The window decoded once; each rung's crop encoded at each trial quality (x264, the pipeline's preset), and
    the reference crop kept (raw) for the scoring."""
    top = renditions[0]
    branches = reference.filter_multi_output("split", len(renditions) + 1)
    # The reference crop itself, uncompressed: the scoring reads it back instead of decoding the window again.
    outputs = [branches.stream(len(renditions)).filter("format", "yuv420p").output(
        os.path.join(out_dir, REFERENCE_FILE), **{"c:v": "rawvideo", "f": "nut"})]
    for i, rendition in enumerate(renditions):
        w, h = trial_size(rendition, top, *crop)
        rung = (branches.stream(i).filter("scale", w, h, flags="lanczos").filter("setsar", 1)
                .filter("format", "yuv420p").filter_multi_output("split", len(crfs)))
        for j, crf in enumerate(crfs):
            options: dict[str, object] = {
                "c:v": "libx264", "preset": settings.preset, "profile:v": "high", "crf": crf,
                "x264-params": "scenecut=0:open-gop=0", "threads": 1, "f": "h264"}
            outputs.append(rung.stream(j).output(os.path.join(out_dir, f"{rendition.name}-{j}.264"), **options))
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(
        cmd="ffmpeg", overwrite_output=True)


def stream_bytes(path: str) -> tuple[int, int]:
    """(IDR bytes, other bytes) of an Annex B H.264 stream: NAL type 5 (and the SPS/PPS before it) vs the rest."""
    with open(path, "rb") as stream:
        data = stream.read()
    starts = _start_codes(data)
    idr = other = 0
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal_type = data[start] & 0x1F if start < len(data) else 0
        if nal_type in (5, 7, 8):
            idr += end - start
        else:
            other += end - start
    return idr, other


def _start_codes(data: bytes) -> list[int]:
    found, at = [], data.find(b"\x00\x00\x01")
    while at >= 0:
        found.append(at + 3)
        at = data.find(b"\x00\x00\x01", at + 3)
    return found


def window_kbps(path: str, frames: int, fps: float, gop_frames: int, scale: float) -> float:
    """A trial's rate as the whole picture would need it in the final encode (one IDR per GOP)."""
    idr, other = stream_bytes(path)
    per_frame = (other + idr * min(1.0, frames / gop_frames)) / frames
    return per_frame * 8 * fps / 1000 * scale


def probe_quality(src: str, source: SourceInfo, renditions: list[Rendition], settings: EncoderSettings,
                  probe: ProbeSettings = ProbeSettings(), timeout: float = 600.0) -> dict[str, RungTrial]:
    """Per rung: the rate (kbps, whole picture) and the mean VMAF of its trial encodes at each CRF, and of its
    picture unencoded (its ceiling), over every window."""
    top = renditions[0]
    fps = float(Fraction(top.fps))
    keys = [(r.name, j) for r in renditions for j in range(len(probe.crfs))]
    rates: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    vmafs: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    ceilings: dict[str, list[float]] = {r.name: [] for r in renditions}
    scale = {r.name: 1.0 for r in renditions}
    with tempfile.TemporaryDirectory(prefix="vodflow-quality-") as out_dir:
        for index, (start, length) in enumerate(sample_windows(source.duration, probe.window_seconds)):
            _, _, w, h = crop_box(top.width, top.height, index, probe.max_pixels)
            sizes = {r.name: trial_size(r, top, w, h) for r in renditions}
            for r in renditions:
                scale[r.name] = r.width * r.height / (sizes[r.name][0] * sizes[r.name][1])
            command = trial_command(reference_crop(src, source, top, start, length, index, probe.max_pixels),
                                    renditions, (w, h), probe.crfs, settings, out_dir)
            result = run_ffmpeg(command, timeout=timeout)
            if result.returncode != 0:
                raise classify_failure(result, out_dir)
            paths = {key: os.path.join(out_dir, f"{key[0]}-{key[1]}.264") for key in keys}
            if not all(os.path.exists(path) and os.path.getsize(path) for path in paths.values()):
                # The probe is the first read past the header: a cut upload whose index still describes the whole.
                raise BadInput(errors.UNREADABLE, f"Nothing could be decoded at {start:.1f} s of the video's "
                               f"{source.duration:.1f} s: the file is truncated (an interrupted upload?) or corrupt.")
            reference_path = os.path.join(out_dir, REFERENCE_FILE)
            # Only the scored frames and the ones before them are upscaled and compared (``sampled_pairs``).
            every = ("select", probe.subsample)
            trials = [Distorted(paths[key], (("framerate", top.fps), ("f", "h264"), every)) for key in keys]
            trials += [Distorted(_alias(reference_path, f"ceiling-{r.name}.nut"),
                                 (("f", "nut"), every, ("prescale", sizes[r.name]))) for r in renditions]
            reference = sampled_pairs(ffmpeg.input(reference_path, f="nut")["v:0"], probe.subsample)
            scores: list[VmafScore] = score(reference, trials, w, h, subsample=2, timeout=timeout)
            frames = round(length * fps)
            gop = round(settings.keyframe_seconds * fps)
            for key, scored in zip(keys, scores, strict=False):
                vmafs[key].append(scored.mean)
                rates[key].append(window_kbps(paths[key], frames, fps, gop, scale[key[0]]))
            for r, scored in zip(renditions, scores[len(keys):], strict=True):
                ceilings[r.name].append(scored.mean)
    found = {}
    for r in renditions:
        (low_rate, low_vmaf), (high_rate, high_vmaf) = sorted(
            (_mean(rates[(r.name, j)]), _mean(vmafs[(r.name, j)])) for j in range(len(probe.crfs)))
        found[r.name] = RungTrial(r.name, r.video_kbps, low_rate, low_vmaf, high_rate, high_vmaf,
                                  _mean(ceilings[r.name]))
    log.info("Quality probe: %s", ", ".join(f"{t.name} {t.low_kbps:.0f}k→{t.low_vmaf:.1f} {t.high_kbps:.0f}k→"
                                             f"{t.high_vmaf:.1f} ceiling {t.ceiling_vmaf:.1f}"
                                             for t in found.values()))
    return found


def _alias(path: str, name: str) -> str:
    """Another name for ``path`` in its folder: ffmpeg-python merges identical inputs into one node, and each
    ceiling reads the reference again, apart."""
    alias = os.path.join(os.path.dirname(path), name)
    if not os.path.lexists(alias):
        os.symlink(os.path.basename(path), alias)
    return alias


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
