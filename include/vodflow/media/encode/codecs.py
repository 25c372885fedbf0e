"""The video codecs a ladder can be delivered in, and which ffmpeg encodes them. Pure apart from asking an ffmpeg
binary which encoders it has.

H.264 is the universal fallback: its renditions are the MPEG-TS tree (and, remuxed, the CMAF tree). The other
codecs are encoded straight to CMAF (fragmented MP4) on the same keyframe and segment grid, from the same decode,
and are listed beside H.264 in the CMAF master and the DASH MPD. Their rungs carry ``rate_factor`` × the H.264
rung's bitrate (AV1: the cap of its capped CRF; HEVC: its VBR rate), measured against the H.264 rung's VMAF by
``bench/codecs.py`` (``codec_options`` says how; docs/outputs.md has the numbers).

Debian's ffmpeg 5.1 has SVT-AV1 1.4, about 2.4× the CPU of SVT-AV1 4.x for the same preset and bytes, so a run
that asks for any codec but H.264 encodes (every codec, from one decode) with the static ffmpeg of the
``imageio-ffmpeg`` wheel, which also scores VMAF; an H.264-only run keeps the system's ffmpeg, so its tree is
byte-identical to what it was.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import lru_cache

from vodflow.errors import MediaToolError
from vodflow.media.encode.ladder import MAXRATE_FACTOR, MIN_VIDEO_KBPS, Rendition

H264 = "h264"


@dataclass(frozen=True)
class VideoCodec:
    name: str  # what a request names: "h264", "av1", "hevc"
    encoder: str  # ffmpeg's encoder
    rate_factor: float  # a rung's bitrate (AV1: its cap), as a fraction of the H.264 rung's (bench/codecs.py)
    hdr: bool  # 10-bit: an HDR source keeps its dynamic range in this codec's renditions
    label: str  # for people (the UI, docs)


CODECS: dict[str, VideoCodec] = {
    c.name: c for c in (
        VideoCodec(H264, "libx264", 1.0, False, "H.264"),
        VideoCodec("av1", "libsvtav1", 0.67, True, "AV1"),
        VideoCodec("hevc", "libx265", 0.65, True, "HEVC"),
    )
}


def parse_codecs(value: object) -> tuple[str, ...]:
    """A request's or the setting's ``codecs``: a name or a list of names, H.264 first and always included (it is
    the fallback every player decodes). Raises ``ValueError`` with the reason."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"codecs must be a list of codec names, some of {sorted(CODECS)}")
    unknown = sorted({n for n in names if n not in CODECS})
    if unknown:
        raise ValueError(f"unknown codec(s) {unknown}; known: {sorted(CODECS)}")
    return (H264, *dict.fromkeys(n for n in names if n != H264))


def modern_ffmpeg() -> str:
    """The ffmpeg that encodes a run with any codec but H.264: the static build in the ``imageio-ffmpeg`` wheel
    (pinned in constraints.txt), which has SVT-AV1 4.x, x265 and libvmaf."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a runtime requirement
        raise MediaToolError("AV1/HEVC encoding needs the imageio-ffmpeg package (requirements.txt)") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_for(codecs: tuple[str, ...]) -> str:
    """The ffmpeg binary a run with these codecs encodes with (see the module's docstring)."""
    return "ffmpeg" if tuple(codecs) in ((), (H264,)) else modern_ffmpeg()


@lru_cache(maxsize=4)
def encoders_of(binary: str) -> frozenset[str]:
    out = subprocess.run([binary, "-hide_banner", "-encoders"], capture_output=True, text=True,  # noqa: S603
                         check=False, timeout=30)
    return frozenset(line.split()[1] for line in out.stdout.splitlines()
                     if len(line.split()) > 1 and line.startswith(" V"))


def unavailable(codecs: tuple[str, ...]) -> list[str]:
    """The codecs this machine's ffmpeg for them cannot encode (a 400 at trigger, never a failed run)."""
    try:
        have = encoders_of(ffmpeg_for(codecs))
    except (OSError, MediaToolError, subprocess.SubprocessError):
        return [c for c in codecs if c != H264]
    return [c for c in codecs if CODECS[c].encoder not in have]


def codec_ladder(renditions: tuple[Rendition, ...], codec: str, dynamic_range: str = "SDR"
                 ) -> tuple[Rendition, ...]:
    """``codec``'s renditions of an H.264 ladder: the same sizes, frame rate and audio (the audio tracks are
    shared), ``rate_factor`` of each rung's bits; named ``<codec>-<rung>``."""
    factor = CODECS[codec].rate_factor
    out = []
    for r in renditions:
        kbps = max(MIN_VIDEO_KBPS, round(r.video_kbps * factor / 10.0) * 10)
        out.append(Rendition(name=f"{codec}-{r.name}", width=r.width, height=r.height, video_kbps=kbps,
                             maxrate_kbps=int(kbps * MAXRATE_FACTOR), bufsize_kbits=r.bufsize_kbits * kbps
                             // max(r.video_kbps, 1), audio_kbps=r.audio_kbps, fps=r.fps, codec=codec,
                             dynamic_range=dynamic_range))
    return tuple(out)
