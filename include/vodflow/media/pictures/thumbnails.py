"""A poster frame and evenly spaced thumbnails, cut from the encode's own decode.

Pictures are extra outputs of the ffmpeg that encodes the renditions (or a chunk of them): the decoded,
normalised, constant-rate picture is split once more, ``select`` keeps only the frames wanted, and those are
scaled and written as JPEGs. No second decode, no seek through the source, no task of its own competing with
the encodes. Frames are addressed by their index on the output frame grid, so a chunk renders exactly the
pictures that fall in its stretch and the whole set is the same whether a video is chunked or not.
The poster is chosen from a few frames half a second apart near 10 % of the video: the encode writes each of them
with its luma statistics (``signalstats``), and ``choose_poster`` keeps the most representative of those that are
neither (near-)black nor flat, so a fade, a black lead-in or a blank frame is never the poster when the video has
a picture (ffmpeg's ``thumbnail`` filter alone picked the black frame when most candidates were black). Planning,
ffmpeg-python graph building and that choice among files; no process runs here.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg

from vodflow.media.encode.ladder import fit_within

POSTER = "poster.jpg"
POSTER_BOX = (1280, 720)
THUMB_BOX = (320, 180)
THUMB_PATTERN = "%03d.jpg"
MAX_THUMBNAILS = 10
POSTER_CANDIDATES = 5  # frames the poster is chosen from
POSTER_CANDIDATE_SPACING = 0.5  # seconds between them
POSTER_CANDIDATE_PATTERN = "poster-candidate-%d.jpg"  # numbered from 1, in time order; removed by choose_poster
POSTER_STATS = "poster-candidates.txt"  # their signalstats, as ffmpeg's metadata filter prints them
# On the 8-bit limited range (black 16, white 235): a mean luma under this is (near-)black, a fade or a black
# lead-in; 80 % of the pixels within this many levels (10th to 90th percentile) is a flat frame: blank, a slate.
DARK_LUMA = 32
FLAT_SPREAD = 10

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PicturePlan:
    """Which output frames become pictures, and their sizes; the same for every work item of a video."""

    poster_frame: int  # the first candidate; the others follow ``poster_stride`` frames apart
    poster_stride: int
    poster_size: tuple[int, int]
    thumb_frames: tuple[int, ...]  # thumbnail i+1 (001.jpg, …) is output frame thumb_frames[i]
    thumb_size: tuple[int, int]

    def thumbnail_names(self) -> list[str]:
        return [THUMB_PATTERN % (i + 1) for i in range(len(self.thumb_frames))]


def poster_time(duration: float) -> float:
    return round(min(duration * 0.1, 10.0), 3)


def thumbnail_times(duration: float, count: int = MAX_THUMBNAILS) -> list[float]:
    count = max(1, min(count, int(duration // 2) or 1))
    return [round((i + 0.5) * duration / count, 3) for i in range(count)]


def plan_pictures(width: int, height: int, duration: float, fps: str,
                  chunk_firsts: Sequence[int] = ()) -> PicturePlan:
    """Frames on the output grid (``fps``, the renditions' rate) for the poster and the thumbnails.

    ``chunk_firsts``: each chunk's first frame when the video is encoded in chunks. The poster is chosen among
    candidates one encode writes, so they all lie in the chunk that holds the poster's frame: a window straddling
    a seam would leave the poster to the one or two candidates before it (``picture_outputs``)."""
    rate = Fraction(fps)
    last = max(0, math.floor(duration * rate) - 1)  # the last whole frame of the output

    def frame(at: float) -> int:
        return min(last, math.floor(at * rate))

    # Candidates half a second apart, closer in a clip too short for that.
    stride = max(1, min(round(POSTER_CANDIDATE_SPACING * rate), last // (POSTER_CANDIDATES - 1)))
    poster = frame(poster_time(duration))
    # Keep every candidate inside the video: a short clip gets its candidates from earlier on.
    poster = max(0, min(poster, last - stride * (POSTER_CANDIDATES - 1)))
    poster, stride = _inside_its_chunk(poster, stride, sorted(chunk_firsts), last)
    return PicturePlan(poster_frame=poster, poster_stride=stride,
                       poster_size=fit_within(width, height, *POSTER_BOX),
                       thumb_frames=tuple(frame(t) for t in thumbnail_times(duration)),
                       thumb_size=fit_within(width, height, *THUMB_BOX))


def _inside_its_chunk(poster: int, stride: int, chunk_firsts: list[int], last: int) -> tuple[int, int]:
    """(first candidate, stride) moved, and closer together if the chunk is short, so that every candidate lies
    in the chunk holding frame ``poster``: the window ends at that chunk's last frame at the latest."""
    start = max([f for f in chunk_firsts if f <= poster], default=0)
    end = min([f for f in chunk_firsts if f > poster], default=last + 1)  # the next chunk's first frame
    stride = max(1, min(stride, (end - 1 - start) // (POSTER_CANDIDATES - 1)))
    return max(start, min(poster, end - 1 - stride * (POSTER_CANDIDATES - 1))), stride


def picture_outputs(video: ffmpeg.nodes.FilterableStream, plan: PicturePlan, out_dir: str, *,
                    first_frame: int = 0, frames: int | None = None) -> list[ffmpeg.nodes.OutputStream]:
    """JPEG outputs for the pictures whose frames lie in [first_frame, first_frame + frames) of the output grid.

    ``video`` is one branch of the decoded picture, already normalised and at the output frame rate, whose frame
    0 is output frame ``first_frame`` (a chunk's first frame). Returns the outputs to merge into the command;
    an empty list when no picture falls in the stretch (then the caller must not split a branch for it).
    """
    end = math.inf if frames is None else first_frame + frames
    thumbs = [(i, n - first_frame) for i, n in enumerate(plan.thumb_frames) if first_frame <= n < end]
    # Every poster candidate, or none: a chunk seam must not cut the poster's choice short.
    has_poster = first_frame <= plan.poster_frame < end
    wanted = [kind for kind, present in (("poster", has_poster), ("thumbs", bool(thumbs))) if present]
    if not wanted:
        return []
    branches = video.filter_multi_output("split", len(wanted)) if len(wanted) > 1 else None
    outputs = []
    for i, kind in enumerate(wanted):
        branch = branches.stream(i) if branches is not None else video
        if kind == "poster":
            start = plan.poster_frame - first_frame
            picked = branch.filter("select", f"gte(n,{start})*not(mod(n-{start},{plan.poster_stride}))"
                                             f"*lt(n,{start + plan.poster_stride * POSTER_CANDIDATES})")
            outputs.append(_jpeg(_measured(picked, plan.poster_size, os.path.join(out_dir, POSTER_STATS)),
                                 plan.poster_size, os.path.join(out_dir, POSTER_CANDIDATE_PATTERN), start_number=1))
        else:
            chosen = "+".join(f"eq(n,{n})" for _, n in thumbs)
            picked = branch.filter("select", chosen)
            outputs.append(_jpeg(picked, plan.thumb_size, os.path.join(out_dir, THUMB_PATTERN),
                                 start_number=thumbs[0][0] + 1))
    return outputs


def _measured(video: ffmpeg.nodes.FilterableStream, size: tuple[int, int], stats_path: str
              ) -> ffmpeg.nodes.FilterableStream:
    """The candidates at the poster's size, 8-bit limited range (so the thresholds mean the same for every
    source), each frame's ``signalstats`` printed to ``stats_path`` on its way to the JPEG encoder."""
    return (video.filter("scale", size[0], size[1], flags="lanczos", out_range="tv").filter("format", "yuv420p")
            .filter("signalstats").filter("metadata", mode="print", file=stats_path))


@dataclass(frozen=True)
class Candidate:
    """One poster candidate and its luma/chroma statistics (8-bit limited range)."""

    path: str
    luma: float  # YAVG
    low: float  # YLOW: 10th percentile
    high: float  # YHIGH: 90th percentile
    u: float
    v: float

    @property
    def dark(self) -> bool:
        return self.luma < DARK_LUMA

    @property
    def flat(self) -> bool:
        return self.high - self.low < FLAT_SPREAD

    def features(self) -> tuple[float, ...]:
        return (self.luma, self.low, self.high, self.u, self.v)


def _candidate_paths(folder: str) -> list[str]:
    numbered = re.compile(re.escape(POSTER_CANDIDATE_PATTERN).replace("%d", r"(\d+)") + "$")
    found = [(int(m.group(1)), entry.path) for entry in os.scandir(folder) if (m := numbered.match(entry.name))]
    return [path for _, path in sorted(found)]


def read_candidates(folder: str) -> list[Candidate]:
    """The candidates the encode wrote in ``folder``, in time order, with the statistics printed for them."""
    paths = _candidate_paths(folder)
    frames: list[dict[str, float]] = []
    with open(os.path.join(folder, POSTER_STATS), encoding="utf-8") as stats:
        for line in stats:
            if line.startswith("frame:"):
                frames.append({})
            elif line.startswith("lavfi.signalstats.") and frames:
                key, _, value = line[len("lavfi.signalstats."):].strip().partition("=")
                frames[-1][key] = float(value)
    # One printed frame per JPEG: a mismatch raises (strict), and the caller falls back.
    return [Candidate(path, f["YAVG"], f["YLOW"], f["YHIGH"], f["UAVG"], f["VAVG"])
            for path, f in zip(paths, frames, strict=True)]


def pick_poster(candidates: list[Candidate]) -> Candidate:
    """The most representative candidate that is neither dark nor flat: the one whose statistics lie closest to
    all the others' (the medoid; ffmpeg's ``thumbnail`` idea on five numbers instead of a histogram, and an
    outlier such as a flash does not pull it); the earliest on a tie. When every candidate is dark or flat, the
    one with the most detail, the brightest on a tie."""
    good = [c for c in candidates if not c.dark and not c.flat]
    if not good:
        return max(candidates, key=lambda c: (not c.dark, c.high - c.low, c.luma))
    return min(good, key=lambda c: sum(math.dist(c.features(), other.features()) for other in good))


def choose_poster(folder: str) -> str | None:
    """Turn the candidates an encode wrote into ``poster.jpg`` (and remove them and their statistics): the path
    of the poster, or None when this encode wrote no candidate. Best effort, like every picture: statistics that
    cannot be read leave the middle candidate as the poster."""
    paths = _candidate_paths(folder)
    stats = os.path.join(folder, POSTER_STATS)
    if not paths:
        if os.path.exists(stats):
            os.remove(stats)
        return None
    try:
        candidates = read_candidates(folder)
        chosen = pick_poster(candidates).path
        log.info("Poster: %s of %d candidates (mean luma %s)", os.path.basename(chosen), len(candidates),
                 ", ".join(f"{c.luma:.0f}" for c in candidates))
    except (OSError, KeyError, ValueError, IndexError) as exc:
        chosen = paths[len(paths) // 2]
        log.warning("Poster candidates' statistics unreadable (%s); %s is the poster", exc,
                    os.path.basename(chosen))
    poster = os.path.join(folder, POSTER)
    os.replace(chosen, poster)
    for path in paths:
        if path != chosen:
            os.remove(path)
    if os.path.exists(stats):
        os.remove(stats)
    return poster


def _jpeg(video: ffmpeg.nodes.FilterableStream, size: tuple[int, int], path: str,
          **options: object) -> ffmpeg.nodes.OutputStream:
    scaled = video.filter("scale", size[0], size[1], flags="lanczos").filter("setsar", 1)
    # passthrough: each selected frame written once, never duplicated to fill a constant rate.
    return scaled.output(path, **{"q:v": 3, "fps_mode": "passthrough", "map_metadata": -1, "an": None},
                         **options)
