"""Early playback of a chunked run (issue 25): each chunk's video segments, and the audio item's audio segments,
uploaded to the version's early tree (``pipeline.early``) as ffmpeg finishes them, from a thread beside it.

A chunk's segments carry their place on the whole video's grid (``media.encode.segmented``), so the items may
finish in any order on any host: the tree lists only each track's contiguous prefix, so the video becomes
playable, and grows, in timeline order. The segment muxer lists a segment in its folder's ``index.m3u8`` once it
has closed it: that list, not the files, says what is complete (an MPEG-TS being written is a valid prefix of
itself, and the next file may be opened before the list is rewritten). Best effort throughout, like the tree: an
upload that fails is tried again when the item ends, and never fails the encode.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from vodflow.media.encode.chunks import Chunk, audio_segments, chunk_segments
from vodflow.media.encode.segmented import (
    LIST_NAME,
    Piece,
    audio_cut_frames,
    audio_piece,
    segment_seq,
    video_piece,
)
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.early import AUDIO_TRACK, EarlySegment, EarlyTree, upload_segment
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
Measure = Callable[[str, int, str], Piece]  # (track, seq, path) → the finished segment


def listed(folder: str) -> list[int]:
    """The segments the muxer's list in ``folder`` names as finished (whole lines only: it may be mid-write)."""
    try:
        with open(os.path.join(folder, LIST_NAME)) as file:
            text = file.read()
    except OSError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet, or is empty
    return sorted(seq for line in lines if (seq := segment_seq(os.path.basename(line.strip()))) is not None)


class EarlyFeed:
    """Watches segment folders (track → folder) while ffmpeg writes them; uploads each finished segment to
    ``early/<track>/seg_NNNNN.ts`` and adds it to the tree. ``start`` before ffmpeg, ``finish`` after it exited
    well (the rest, and ``complete`` for tracks whose end this item wrote), ``stop`` after a failure."""

    def __init__(self, services: Services, job: Job, tree: EarlyTree, folders: dict[str, str], measure: Measure,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.services, self.job, self.tree, self.folders, self.measure = services, job, tree, folders, measure
        self.poll_seconds = poll_seconds
        self.done: dict[str, set[int]] = {track: set() for track in folders}  # uploaded and added
        self.uploaded = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="early-feed", daemon=True)

    def start(self) -> EarlyFeed:
        for folder in self.folders.values():
            os.makedirs(folder, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self, ends: dict[str, int] | None = None) -> None:
        """ffmpeg exited well: every listed segment not yet in the tree, then ``ends`` (track → last seq)."""
        self.stop()
        self._feed()
        for track, last in (ends or {}).items():
            self.tree.complete(track, last)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._feed()

    def _feed(self) -> None:
        with self._lock:
            batch = []
            for track, folder in self.folders.items():
                for seq in listed(folder):
                    if seq not in self.done[track] and (segment := self._upload(track, seq, folder)):
                        batch.append(segment)
            if batch:
                self.tree.add(batch)
                for segment in batch:
                    self.done[segment.track].add(segment.seq)

    def _upload(self, track: str, seq: int, folder: str) -> EarlySegment | None:
        name = f"seg_{seq:05d}.ts"
        try:
            piece = self.measure(track, seq, os.path.join(folder, name))
            upload_segment(self.services, f"{self.tree.prefix}{track}/{name}", piece.path)
        except Exception:  # tried again at the next poll, and at the item's end
            log.exception("Early segment %s/%s of %s v%d not uploaded", track, name, self.job.video_id,
                          self.job.version)
            return None
        self.uploaded += 1
        return EarlySegment(track=track, seq=seq, uri=name, duration=piece.duration)


@contextmanager
def feeding(feed: EarlyFeed | None, ends: Callable[[], dict[str, int]] = dict) -> Iterator[None]:
    """Run the body (the encode) with ``feed`` watching its folders; ``finish`` when it ends well (with the
    track ends ``ends()`` then gives), ``stop`` when it raises."""
    if feed is None:
        yield
        return
    feed.start()
    try:
        yield
    except BaseException:
        feed.stop()
        raise
    try:
        feed.finish(ends())
    except Exception:  # early playback never fails an encode that worked
        log.exception("Early playback of %s v%d not finished", feed.job.video_id, feed.job.version)


def chunk_feed(services: Services, job: Job, tree: EarlyTree | None, plan: EncodePlan, workdir: str,
               chunk: Chunk) -> EarlyFeed | None:
    """The feed of one chunk's H.264 renditions (None without an early tree)."""
    if tree is None:
        return None
    fps = {r.name: r.fps for r in plan.renditions}
    return EarlyFeed(services, job, tree, {r.name: chunk_segments(workdir, chunk, r.name) for r in plan.renditions},
                     lambda track, seq, path: video_piece(seq, path, fps[track]))


def chunk_ends(feed: EarlyFeed | None, plan: EncodePlan, chunk: Chunk) -> Callable[[], dict[str, int]]:
    """The last chunk ends every video track at the last segment it wrote."""
    def ends() -> dict[str, int]:
        if feed is None or chunk.index != plan.chunks - 1:
            return {}
        return {track: max(listed(folder)) for track, folder in feed.folders.items() if listed(folder)}
    return ends


def early_audio_kbps(plan: EncodePlan) -> int:
    """The one AAC bitrate every early variant plays: the top rendition's (0: no audio)."""
    return (plan.renditions[0].audio_kbps if plan.renditions else 0) or max(plan.audio_bitrates, default=0)


def audio_last_seq(probed: SourceInfo, segment_seconds: int) -> int:
    """The audio track's last segment: fixed by the picture's end, whoever asks."""
    return len(audio_cut_frames(probed.picture_end, segment_seconds))


def audio_feed(services: Services, job: Job, tree: EarlyTree | None, probed: SourceInfo,
               workdir: str) -> EarlyFeed | None:
    """The feed of the audio item's early track (None without an early tree)."""
    if tree is None:
        return None
    seconds = services.settings.encoder.segment_seconds
    return EarlyFeed(services, job, tree, {AUDIO_TRACK: audio_segments(workdir)},
                     lambda track, seq, path: audio_piece(seq, path, seconds, probed.picture_end))

