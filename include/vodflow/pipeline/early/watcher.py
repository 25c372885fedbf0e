"""Segments as ffmpeg finishes them: a thread beside the encode, never in its path.

ffmpeg's HLS muxer (5.1) holds a segment in memory and writes its file when the segment is complete. Our encodes
ask for ``hls_flags temp_file`` (the file is written as ``seg_NNNNN.ts.tmp`` and renamed) and an ``event``
playlist, which ffmpeg rewrites (through a temporary file too) after each segment. So a segment the local
playlist lists under a file that exists is complete, with ffmpeg's own EXTINF — as soon as ffmpeg closes it, not
one segment later. ``finish`` reports what is left from the final playlist once ffmpeg has exited.

With a lead-in (``LeadIn``), the first VOD segment is not handed on: its lead-in pieces are, which the same
ffmpeg writes beside it (the segment muxer lists each once closed), and every later VOD segment follows under its
early seq (``EarlyGrid.early_seq``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import m3u8

from vodflow.media.encode.ffmpeg import segment_name
from vodflow.media.encode.segmented import LIST_NAME, EarlyGrid, listed, segment_seq, video_piece

log = logging.getLogger(__name__)
PLAYLIST = "index.m3u8"

# (track, seq, path, duration): called on the watcher's thread, in seq order per track; keep it short.
OnSegment = Callable[[str, int, str, float], None]
Listing = list[tuple[int, str, float | None]]  # (early seq, path, duration; None: counted from its frames)


@dataclass(frozen=True)
class LeadIn:
    """Each track's lead-in pieces (``segmented.lead_in_options``): the first VOD segment in ``grid.lead`` parts."""

    folders: dict[str, str]
    fps: dict[str, str]
    grid: EarlyGrid


def listed_segments(folder: str) -> list[tuple[int, str, float]]:
    """(seq, path, duration) of each segment ffmpeg's playlist in ``folder`` lists (none before it is written)."""
    try:
        with open(os.path.join(folder, PLAYLIST)) as f:
            text = f.read()
    except OSError:
        return []
    found = []
    for entry in m3u8.loads(text).segments:
        seq = segment_seq(os.path.basename(entry.uri))
        if seq is not None:
            found.append((seq, os.path.join(folder, entry.uri), float(entry.duration)))
    return found


class SegmentWatcher:
    """Watches ffmpeg HLS output folders (track → folder) and calls ``on_segment`` with each newly completed
    segment. ``start`` before ffmpeg runs; ``finish`` after it exited well (reports the rest, returns each
    track's last seq), ``stop`` after a failure (reports nothing more)."""

    def __init__(self, folders: dict[str, str], on_segment: OnSegment, poll_seconds: float = 0.1,
                 lead: LeadIn | None = None) -> None:
        self.folders, self.on_segment, self.poll_seconds, self.lead = dict(folders), on_segment, poll_seconds, lead
        self.next_seq = dict.fromkeys(self.folders, 0)  # the first seq not reported yet, per track
        self.cpu_seconds = 0.0  # the watching thread's, once stopped: what watching costs
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen: dict[str, tuple] = {}  # each track's lists' stats when last read: a parse per change
        self._thread = threading.Thread(target=self._run, name="segment-watcher", daemon=True)

    def start(self) -> SegmentWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> dict[str, int | None]:
        """ffmpeg exited well: report every segment its playlists list that was not reported yet (the last of
        each track, at least); each track's last seq (None: it has none)."""
        self.stop()
        last: dict[str, int | None] = {}
        with self._lock:
            for track in self.folders:
                found, _ = self._listing(track)
                self._report_new(track, found)
                last[track] = max((seq for seq, _, _ in found), default=None)
        return last

    def _listing(self, track: str) -> tuple[Listing, bool]:
        """What is complete, by early seq; False: ffmpeg's playlist named a file not renamed yet (read again)."""
        vod = listed_segments(self.folders[track])
        done: Listing = [s for s in vod if os.path.exists(s[1])]
        settled = len(done) == len(vod)
        if self.lead is None:
            return done, settled
        grid, folder = self.lead.grid, self.lead.folders[track]
        pieces: Listing = [(seq, os.path.join(folder, segment_name(seq)), None)
                           for seq in listed(folder) if seq < grid.lead]
        return pieces + [(grid.early_seq(seq), path, d) for seq, path, d in done if seq], settled

    def _run(self) -> None:
        started = time.thread_time()
        try:
            while not self._stop.is_set():
                with self._lock:
                    for track in self.folders:
                        if self._changed(track):
                            done, settled = self._listing(track)
                            if not settled:
                                self._seen.pop(track)  # listed before it was renamed: read it again
                            self._report_new(track, done)
                self._stop.wait(self.poll_seconds)
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _changed(self, track: str) -> bool:
        """ffmpeg renames each new playlist over the last (a new inode, whatever the clock's granularity); the
        segment muxer rewrites its list (a new size)."""
        files = [os.path.join(self.folders[track], PLAYLIST)]
        if self.lead is not None:
            files.append(os.path.join(self.lead.folders[track], LIST_NAME))
        key = tuple(_stat(path) for path in files)
        if self._seen.get(track) == key:
            return False
        self._seen[track] = key
        return True

    def _report_new(self, track: str, found: Listing) -> None:
        """In seq order, from the first not reported, and only while contiguous."""
        for seq, path, duration in sorted(found):
            if seq < self.next_seq[track]:
                continue
            if seq != self.next_seq[track]:
                return
            self._report(track, seq, path, duration)
            self.next_seq[track] = seq + 1

    def _report(self, track: str, seq: int, path: str, duration: float | None) -> None:
        try:
            if duration is None and self.lead is not None:  # a lead-in piece: its frames
                duration = video_piece(seq, path, self.lead.fps[track]).duration
            self.on_segment(track, seq, path, round(duration or 0.0, 6))
        except Exception:  # a callback's failure is early playback's, never the encode's
            log.exception("Early segment %s/%d not handed on", track, seq)


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
