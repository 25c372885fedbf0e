"""Early playback beside a whole-video encode: each rendition's segments go to their final VOD keys
(``hls/<rendition>/seg_NNNNN.ts``) as ffmpeg completes them, and into the early tree's EVENT playlists as
``../../hls/<rendition>/seg_NNNNN.ts``. The item's own upload then skips them: no segment is PUT twice. The first
VOD segment is listed as its lead-in pieces instead (``segmented.EarlyGrid``: three of 2 s, written by the same
ffmpeg from the same packets), under ``early/<rendition>/``: a player starts once the first is up.

Threads: the watcher finds completed segments; a small pool uploads and lists them. Neither is in ffmpeg's path
(ffmpeg writes its files, the progress reader reads its pipe). A retry of the item re-encodes the same segment
names and re-uploads them to the same keys; the catalog keeps the first row of each seq.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

from vodflow import layout
from vodflow.media.encode.ffmpeg import segment_name
from vodflow.media.encode.segmented import EarlyGrid, early_grid, listed, video_piece
from vodflow.media.measured import MeasuredRendition
from vodflow.pipeline.early.tree import EarlySegment, EarlyTree, upload_segment
from vodflow.pipeline.early.watcher import LeadIn, SegmentWatcher
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)
UPLOADERS = 2  # segments come one per rendition every few seconds: two PUTs at a time keep up


class WholeVideoEarly:
    """The early tree of one whole-video item, fed from its encode's ``hls_dir``."""

    def __init__(self, services: Services, job: Job, plan: EncodePlan, hls_dir: str, lead_root: str) -> None:
        self.services, self.job, self.hls_dir = services, job, hls_dir
        self.names = plan.names
        self.tree = EarlyTree.open(services, job, plan)
        grid = early_grid(services.settings.encoder)
        # Where the encode writes the lead-in pieces (None: no tree, or no lead-in): ``encode_renditions``.
        self.lead_root = lead_root if self.tree is not None and grid.lead > 1 else None
        # The early seqs this item lists: without lead-in pieces, one per VOD segment.
        self.grid = grid if self.lead_root is not None else EarlyGrid(grid.segment_seconds, grid.segment_seconds)
        self.fps = {r.name: r.fps for r in plan.renditions}
        self.uploaded: set[str] = set()  # VOD keys PUT by the early path (what the item's upload skips)
        self.lead_up: set[str] = set()  # lead-in pieces PUT
        self.cpu_seconds = 0.0  # the uploads' and listings' threads (the watcher's: ``SegmentWatcher.cpu_seconds``)
        self._lock = threading.Lock()

    @property
    def on(self) -> bool:
        return self.tree is not None

    def key(self, name: str, seq: int) -> str:
        return f"{layout.hls_prefix(self.job.video_id, self.job.version)}{name}/{segment_name(seq)}"

    def placed(self, track: str, seq: int) -> tuple[str, str]:
        """An early seq's object key and its URI in the track's EVENT playlist: a lead-in piece's own, or the VOD
        segment's."""
        if self.lead_root is not None and seq < self.grid.lead:
            early = layout.early_prefix(self.job.video_id, self.job.version)
            return f"{early}{track}/{segment_name(seq)}", segment_name(seq)
        vod_seq = self.grid.vod_seq(seq)
        return self.key(track, vod_seq), f"../../hls/{track}/{segment_name(vod_seq)}"

    def lead_folder(self, track: str) -> str:
        return os.path.join(self.lead_root or "", track)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around one encode attempt: segments are handed on while it runs; the rest and each track's end when it
        succeeded; nothing more when it failed (a retry's attempt starts over, the same keys)."""
        if self.tree is None:
            yield
            return
        self.uploaded.clear()  # a new attempt writes every segment anew
        self.lead_up.clear()
        pending: list[Future] = []
        with ThreadPoolExecutor(UPLOADERS, thread_name_prefix="early-upload") as pool:
            def on_segment(track: str, seq: int, path: str, duration: float) -> None:
                pending.append(pool.submit(self._upload, track, seq, path, duration))

            lead = (LeadIn({n: self.lead_folder(n) for n in self.names}, self.fps, self.grid)
                    if self.lead_root is not None else None)
            watcher = SegmentWatcher({n: os.path.join(self.hls_dir, n) for n in self.names}, on_segment,
                                     lead=lead).start()
            try:
                yield
            except BaseException:
                watcher.stop()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            last = watcher.finish()
            wait(pending)
        self.cpu_seconds += watcher.cpu_seconds
        for track, seq in last.items():
            if seq is not None:  # ends once every segment is listed (one whose PUT failed: after ``uploaded``)
                self.tree.complete(track, seq)

    def fill(self, measured: list[MeasuredRendition]) -> None:
        """After the item's own upload: list what the early path could not PUT itself (a gap would hold the
        early playlist back until the VOD version is published)."""
        if self.tree is None:
            return
        missing = [EarlySegment(m.name, self.grid.early_seq(seq), f"../../hls/{m.name}/{s.uri}", round(s.duration, 6))
                   for m in measured for seq, s in enumerate(m.segments)
                   if self.key(m.name, seq) not in self.uploaded and (seq or self.grid.lead == 1)]
        if missing:
            log.warning("early: %d segments listed after the item's upload", len(missing))
            self.tree.add(missing)
        for m in measured if self.lead_root is not None else []:  # a lead-in piece whose PUT failed: once more
            for seq in listed(self.lead_folder(m.name)):
                if seq < self.grid.lead and self.placed(m.name, seq)[0] not in self.lead_up:
                    path = os.path.join(self.lead_folder(m.name), segment_name(seq))
                    self._upload(m.name, seq, path, round(video_piece(seq, path, self.fps[m.name]).duration, 6))

    def _upload(self, track: str, seq: int, path: str, duration: float) -> None:
        (key, uri), started = self.placed(track, seq), time.thread_time()
        try:
            try:
                upload_segment(self.services, key, path)
            except Exception:  # the item's own upload PUTs it then (a lead-in piece: ``fill`` tries again)
                log.exception("Early upload of %s failed", key)
                return
            with self._lock:
                (self.uploaded if uri.startswith("../") else self.lead_up).add(key)
            self.tree.add([EarlySegment(track, seq, uri, duration)])
        finally:
            with self._lock:
                self.cpu_seconds += time.thread_time() - started

    def close(self, timeout: float | None = None) -> None:
        """Log the early path's cost and wait for its ``video.playable`` webhook (if one is under way)."""
        if self.tree is None:
            return
        log.info("early: %d segment PUTs, %d lead-in piece PUTs, %d playlist PUTs (and the master), %.2f CPU s in "
                 "its threads", len(self.uploaded), len(self.lead_up), self.tree.playlist_puts, self.cpu_seconds)
        self.tree.close(timeout)
