"""Outputs cut into segments as ffmpeg writes them, so a video's first seconds exist (and can be played early)
long before its encode is done. Pure planning, plus the local file work around it.

The cut is on the early grid (``EarlyGrid``), counted in frames: early segment ``k`` starts with the first output
frame at or after its grid line (frame ``ceil(line × fps)``), an IDR of the keyframe grid, so a chunk (which
starts on a VOD segment line) is cut exactly where an encode of the whole video is, whatever the rate. The early
grid is the VOD's 6 s grid, but its first 6 s are cut into short lead-in segments (2 s): a player can start once
the first is written, a third of the wait. The
``segment`` muxer cuts at frame numbers (``segment_frames``), not at times: a chunk's times start a fraction of a
frame after its grid line, and a time test would miss a cut at 29.97 fps. Each piece is an MPEG-TS of its own, and
their bytes in order are one continuous MPEG-TS: the chunk file the join reads is their concatenation.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction

from vodflow.errors import MediaToolError
from vodflow.media.encode.ffmpeg import SEGMENT_PATTERN
from vodflow.media.options import EncoderSettings
from vodflow.media.package.mpegts import index_segment

AAC_FRAME_SAMPLES = 1024
AAC_RATE = 48000  # ffmpeg.audio_codec_options
AAC_PRIMING_FRAMES = 1  # ffmpeg's AAC encoder delay: 1024 samples, its first packet stamped before 0
LIST_NAME = "index.m3u8"  # the segment muxer's list of the segments it finished
_SEGMENT_NAME = re.compile(r"seg_(\d{5,})\.ts")
# A tee slave's options end at ':' or ']' and its file name at '|' (unescaped by ffmpeg's av_get_token, which
# also reads '\\' and "'"): a path holding one of them cannot be said to the tee muxer.
_TEE_SPECIAL = re.compile(r"[:|\[\]'\\]")
# ffmpeg's own mux delay for an output (``-muxdelay`` 0.7 s, the same in 5.1 and 9), which a tee slave does not
# inherit: given to the slaves of an output that is also HLS, their timestamps are what the HLS output's would be.
OUTPUT_MUX_DELAY = "max_delay=700000"


@dataclass(frozen=True)
class EarlyGrid:
    """Where early segments start: the VOD segment grid (``segment_seconds``), its first segment cut into
    ``segment_seconds / lead_seconds`` lead-in pieces (``lead_seconds == segment_seconds``: none). Early seq
    ``k`` of the lead-in starts at ``k × lead_seconds``; after it, early seq ``k`` is VOD segment ``k − lead + 1``."""

    segment_seconds: int = 6
    lead_seconds: int = 6

    def __post_init__(self) -> None:
        if self.lead_seconds <= 0 or self.segment_seconds % self.lead_seconds:
            raise ValueError(f"the lead-in ({self.lead_seconds} s) must divide the segment ({self.segment_seconds} s)")

    @property
    def lead(self) -> int:
        """How many early segments the first VOD segment is cut into."""
        return self.segment_seconds // self.lead_seconds

    def start(self, seq: int) -> int:
        """The grid line (s) where early segment ``seq`` starts."""
        return seq * self.lead_seconds if seq <= self.lead else self.vod_seq(seq) * self.segment_seconds

    def seq_at(self, seconds: float) -> int:
        """The early seq that starts on VOD segment line ``seconds`` (a chunk's start)."""
        return self.early_seq(round(seconds / self.segment_seconds))

    def early_seq(self, vod_seq: int) -> int:
        """The early seq of VOD segment ``vod_seq`` (the first one's: its first lead-in piece)."""
        return vod_seq + self.lead - 1 if vod_seq else 0

    def vod_seq(self, seq: int) -> int:
        """The VOD segment that early seq ``seq`` lists, past the lead-in (``seq >= lead``): ``early_seq``'s inverse."""
        return seq - self.lead + 1


def early_grid(settings: EncoderSettings) -> EarlyGrid:
    """The grid of these settings; a lead-in off the keyframe grid cannot be cut (a piece starts with an IDR)."""
    if settings.early_lead_seconds % settings.keyframe_seconds:
        raise ValueError(f"early_lead_seconds ({settings.early_lead_seconds}) must be a multiple of the "
                         f"{settings.keyframe_seconds} s keyframe interval")
    return EarlyGrid(settings.segment_seconds, settings.early_lead_seconds)


@dataclass(frozen=True)
class Piece:
    """One written segment: its place on the grid, its file, its length in seconds."""

    seq: int
    path: str
    duration: float


def grid_frame(seq: int, fps: str, grid: EarlyGrid) -> int:
    """The output frame that starts early segment ``seq``."""
    return math.ceil(grid.start(seq) * Fraction(fps))


def cut_frames(first_frame: int, end_frame: int, seq: int, fps: str, grid: EarlyGrid) -> list[int]:
    """The frames, counted from the chunk's first (``first_frame``, the start of early segment ``seq``), where the
    chunk's later segments start, up to ``end_frame`` (exclusive, on the whole video's grid)."""
    cuts = []
    while (frame := grid_frame(seq + len(cuts) + 1, fps, grid)) < end_frame:
        cuts.append(frame - first_frame)
    return cuts


def lead_in_cuts(fps: str, grid: EarlyGrid) -> list[int]:
    """A whole-video encode's lead-in cuts: every lead-in line after 0, and the first VOD segment's end (what
    comes after it is not wanted: ``lead_in_options``)."""
    return [grid_frame(k, fps, grid) for k in range(1, grid.lead + 1)]


def video_segment_options(folder: str, seq: int, cuts: list[int]) -> dict[str, object]:
    """The ``segment`` muxer writing MPEG-TS pieces named by their global position (``seg_<seq>.ts``), listed in
    ``folder/index.m3u8`` as each is finished."""
    options: dict[str, object] = {"f": "segment", "segment_format": "mpegts", "segment_start_number": seq,
                                  "segment_list": os.path.join(folder, LIST_NAME), "segment_list_type": "m3u8"}
    if cuts:
        options["segment_frames"] = ",".join(str(c) for c in cuts)
    else:  # one segment: no cut at all
        options["segment_time"] = 10**9
    return options


def audio_cut_frames(duration: float, grid: EarlyGrid) -> list[int]:
    """AAC packets (1024 samples at 48 kHz) where the audio's segments after the first start: the first frame
    at or after every early grid line of the timeline, counted after ffmpeg's priming packet (its encoder
    delay: the first packet is stamped one frame before 0)."""
    per_second = Fraction(AAC_RATE, AAC_FRAME_SAMPLES)
    total = math.ceil(duration * per_second) + AAC_PRIMING_FRAMES
    cuts = []
    seq = 1
    while (cut := math.ceil(grid.start(seq) * per_second) + AAC_PRIMING_FRAMES) < total:
        cuts.append(cut)
        seq += 1
    return cuts


def tee_safe(path: str) -> str:
    """``path`` as a tee muxer slave's file name or option; MediaToolError for one it cannot hold."""
    if _TEE_SPECIAL.search(path):
        raise MediaToolError(f"the work folder {path!r} has a character ffmpeg's tee muxer cannot take (:|[]'\\)")
    return path


def tee_audio_outputs(track_file: str, folder: str, cuts: list[int]) -> str:
    """The tee muxer's outputs for one encoded AAC: the whole track as one MPEG-TS (for the join) and the same
    packets as audio-only segments in ``folder`` (``seg_<seq>.ts`` from 0, cut at AAC frame ``cuts``). The
    slaves' mux delay is 0, as ``-muxdelay 0`` gives the other outputs (a tee slave does not inherit it)."""
    segment = ("f=segment:segment_format=mpegts:segment_list_type=m3u8:max_delay=0:"
               f"segment_list={tee_safe(os.path.join(folder, LIST_NAME))}:"
               + (f"segment_frames={','.join(str(c) for c in cuts)}" if cuts else "segment_time=1000000000"))
    return f"[f=mpegts:max_delay=0]{tee_safe(track_file)}|[{segment}]{tee_safe(os.path.join(folder, SEGMENT_PATTERN))}"


def lead_in_options(folder: str, cuts: list[int]) -> str:
    """A tee slave writing the lead-in pieces (``seg_<seq>.ts`` from 0, cut at frames ``cuts``) of an output the
    HLS muxer writes too, listed in ``folder/index.m3u8``. The piece after the last cut (the rest of the video)
    goes to the null device (``discard_after_lead_in``); the same timestamps as the HLS segments
    (``OUTPUT_MUX_DELAY``)."""
    segment = (f"f=segment:segment_format=mpegts:segment_list_type=m3u8:{OUTPUT_MUX_DELAY}:"
               f"segment_list={tee_safe(os.path.join(folder, LIST_NAME))}:"
               f"segment_frames={','.join(str(c) for c in cuts)}")
    return f"[{segment}]{tee_safe(os.path.join(folder, SEGMENT_PATTERN))}"


def discard_after_lead_in(folder: str, lead: int) -> None:
    """The piece after the lead-in is the whole rest of the video again: written to the null device, not the disk."""
    os.makedirs(folder, exist_ok=True)
    rest = os.path.join(folder, SEGMENT_PATTERN % lead)
    if not os.path.islink(rest):
        os.symlink(os.devnull, rest)


def listed(folder: str) -> list[int]:
    """The segments the segment muxer's list in ``folder`` names as finished (whole lines only: it may be
    mid-write)."""
    try:
        with open(os.path.join(folder, LIST_NAME)) as file:
            text = file.read()
    except OSError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet, or is empty
    return sorted(seq for line in lines if (seq := segment_seq(os.path.basename(line.strip()))) is not None)


def segment_seq(name: str) -> int | None:
    """The grid position in a segment's file name (``seg_00012.ts`` → 12); None for another file."""
    found = _SEGMENT_NAME.fullmatch(name)
    return int(found.group(1)) if found else None


def written(folder: str) -> list[tuple[int, str]]:
    """The segment files in ``folder``, in grid order."""
    if not os.path.isdir(folder):
        return []
    found = [(seq, os.path.join(folder, name)) for name in os.listdir(folder)
             if (seq := segment_seq(name)) is not None]
    return sorted(found)


def concatenate(folder: str, out_path: str) -> str:
    """The segments' bytes in order, one file: the continuous MPEG-TS the join reads (an empty file if none)."""
    with open(out_path, "wb") as out:
        for _, path in written(folder):
            with open(path, "rb") as piece:
                while block := piece.read(1 << 20):
                    out.write(block)
    return out_path


def video_piece(seq: int, path: str, fps: str) -> Piece:
    """A finished video segment, its length counted from its frames."""
    with open(path, "rb") as file:
        frames = len(index_segment(file.read()).pes)
    return Piece(seq=seq, path=path, duration=float(frames / Fraction(fps)))


def audio_piece(seq: int, path: str, grid: EarlyGrid, duration: float) -> Piece:
    """A finished audio segment, its length from the AAC packets it holds by the cut rule (the first one with
    the priming packet; the last one to the track's end, ``duration``)."""
    frame = Fraction(AAC_FRAME_SAMPLES, AAC_RATE)
    per_second = 1 / frame
    start = math.ceil(grid.start(seq) * per_second) * frame if seq else -AAC_PRIMING_FRAMES * frame
    end = min(Fraction(duration), math.ceil(grid.start(seq + 1) * per_second) * frame)
    return Piece(seq=seq, path=path, duration=max(0.0, float(end - start)))
