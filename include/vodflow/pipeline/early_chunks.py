"""Early playback of a chunked run (issue 25): each chunk's video segments, and the audio item's audio segments,
uploaded to the version's early tree (``pipeline.early``) as ffmpeg finishes them, from a thread beside it.

A chunk's segments carry their place on the whole video's grid (``media.encode.segmented``), so the items may
finish in any order on any host: the tree lists only each track's contiguous prefix, so the video becomes
playable, and grows, in timeline order. The segment muxer lists a segment in its folder's ``index.m3u8`` once it
has closed it: that list, not the files, says what is complete (an MPEG-TS being written is a valid prefix of
itself, and the next file may be opened before the list is rewritten). Best effort throughout, like the tree: an
upload that fails is tried again when the item ends, and never fails the encode.

A per-title run decides its ladder in the chunk items, so only they may open the tree (its master names the
rungs); the audio item uploads its segments all the same and adds them once a chunk has opened it, and a chunk
that opens it adds the audio segments already up (``adopt_audio``): whichever comes first, none is left out.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from vodflow import layout
from vodflow.media.encode.chunks import Chunk, audio_segments, chunk_segments
from vodflow.media.encode.ffmpeg import segment_name
from vodflow.media.encode.segmented import (
    EarlyGrid,
    Piece,
    audio_cut_frames,
    audio_piece,
    early_grid,
    listed,
    segment_seq,
    video_piece,
)
from vodflow.media.package.event_playlist import event_target_duration
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.early import AUDIO_TRACK, EarlySegment, EarlyTree, upload_segment
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
Measure = Callable[[str, int, str], Piece]  # (track, seq, path) → the finished segment


class EarlyFeed:
    """Watches segment folders (track → folder) while ffmpeg writes them; uploads each finished segment to
    ``early/<track>/seg_NNNNN.ts`` and adds it to the tree. ``start`` before ffmpeg, ``finish`` after it exited
    well (the rest, and ``complete`` for tracks whose end this item wrote), ``stop`` after a failure."""

    def __init__(self, services: Services, job: Job, tree: EarlyTree | Callable[[], EarlyTree | None],
                 folders: dict[str, str], measure: Measure, poll_seconds: float = POLL_SECONDS) -> None:
        """``tree``: the tree, or what finds it once it is open (asked at each poll until it is)."""
        self.services, self.job, self.folders, self.measure = services, job, folders, measure
        self.tree, self._find = (tree, None) if isinstance(tree, EarlyTree) else (None, tree)
        self.poll_seconds = poll_seconds
        self.prefix = layout.early_prefix(job.video_id, job.version)
        self.up: dict[tuple[str, int], EarlySegment] = {}  # uploaded
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
            if self.tree is not None:
                self.tree.complete(track, last)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._feed()

    def _feed(self) -> None:
        with self._lock:
            for track, folder in self.folders.items():
                for seq in listed(folder):
                    if (track, seq) not in self.up:
                        self._upload(track, seq, folder)
            if self.tree is None and self._find is not None:
                self.tree = self._find()
            batch = [s for (track, seq), s in sorted(self.up.items()) if seq not in self.done[track]]
            if batch and self.tree is not None:
                self.tree.add(batch)
                for segment in batch:
                    self.done[segment.track].add(segment.seq)

    def _upload(self, track: str, seq: int, folder: str) -> None:
        name = segment_name(seq)
        try:
            piece = self.measure(track, seq, os.path.join(folder, name))
            upload_segment(self.services, f"{self.prefix}{track}/{name}", piece.path)
        except Exception:  # tried again at the next poll, and at the item's end
            log.exception("Early segment %s/%s of %s v%d not uploaded", track, name, self.job.video_id,
                          self.job.version)
            return
        self.uploaded += 1
        self.up[(track, seq)] = EarlySegment(track=track, seq=seq, uri=name, duration=piece.duration)


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


def audio_last_seq(probed: SourceInfo, grid: EarlyGrid) -> int:
    """The audio track's last segment: fixed by the picture's end, whoever asks."""
    return len(audio_cut_frames(probed.picture_end, grid))


def audio_feed(services: Services, job: Job, plan: EncodePlan, probed: SourceInfo, workdir: str
               ) -> EarlyFeed | None:
    """The feed of the audio item's early track (None: no early playback). A per-title run's tree is opened by
    a chunk (``adopt_audio``): the feed finds it when it is."""
    if not services.settings.early_playback or not early_audio_kbps(plan) or not plan.chunks:
        return None
    tree = None if job.adaptive else EarlyTree.open(services, job, plan)
    if tree is None and not job.adaptive:
        return None
    grid = early_grid(services.settings.encoder)
    return EarlyFeed(services, job, tree or (lambda: opened_tree(services, job)),
                     {AUDIO_TRACK: audio_segments(workdir)},
                     lambda track, seq, path: audio_piece(seq, path, grid, probed.picture_end))


def opened_tree(services: Services, job: Job) -> EarlyTree | None:
    """The version's tree once an item has opened it with an audio track (its master is not written again)."""
    try:
        tracks = services.catalog.early_tracks_of(job.video_id, job.version)
    except Exception:
        log.exception("Early tree of %s v%d not read", job.video_id, job.version)
        return None
    if AUDIO_TRACK not in tracks:
        return None
    return EarlyTree(services, job, list(tracks), event_target_duration(services.settings.encoder.segment_seconds))


def adopt_audio(services: Services, job: Job, tree: EarlyTree | None, probed: SourceInfo) -> None:
    """A per-title run: the audio segments the audio item uploaded before this chunk opened the tree, added to it
    (and the track's end, fixed by the picture's); best effort."""
    if tree is None or not job.adaptive or AUDIO_TRACK not in tree.tracks:
        return
    grid = early_grid(services.settings.encoder)
    try:
        names = [key.rsplit("/", 1)[1] for key in services.storage.list_keys(f"{tree.prefix}{AUDIO_TRACK}/")]
        found = [(seq, name) for name in names if (seq := segment_seq(name)) is not None]
        if found:
            tree.add([EarlySegment(AUDIO_TRACK, seq, name, audio_piece(seq, name, grid, probed.picture_end).duration)
                      for seq, name in sorted(found)])
        tree.complete(AUDIO_TRACK, audio_last_seq(probed, grid))
    except Exception:
        log.exception("Early audio of %s v%d not adopted", job.video_id, job.version)
