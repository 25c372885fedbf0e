"""Segments as ffmpeg finishes them: a thread beside the encode, never in its path.

ffmpeg's HLS muxer (5.1) holds a segment in memory and writes its file when the segment is complete. Our encodes
ask for ``hls_flags temp_file`` (the file is written as ``seg_NNNNN.ts.tmp`` and renamed) and an ``event``
playlist, which ffmpeg rewrites (through a temporary file too) after each segment. So a segment the local
playlist lists under a file that exists is complete, with ffmpeg's own EXTINF — as soon as ffmpeg closes it, not
one segment later. ``finish`` reports what is left from the final playlist once ffmpeg has exited.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import m3u8

from vodflow.media.encode.segmented import segment_seq

log = logging.getLogger(__name__)
PLAYLIST = "index.m3u8"

# (track, seq, path, duration): called on the watcher's thread, in seq order per track; keep it short.
OnSegment = Callable[[str, int, str, float], None]


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

    def __init__(self, folders: dict[str, str], on_segment: OnSegment, poll_seconds: float = 0.1) -> None:
        self.folders, self.on_segment, self.poll_seconds = dict(folders), on_segment, poll_seconds
        self.next_seq = dict.fromkeys(self.folders, 0)  # the first seq not reported yet, per track
        self.cpu_seconds = 0.0  # the watching thread's, once stopped: what watching costs
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int, int]] = {}  # each playlist's stat when last read: a parse per change
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
            for track, folder in self.folders.items():
                listed = listed_segments(folder)
                self._report_new(track, listed)
                last[track] = max((seq for seq, _, _ in listed), default=None)
        return last

    def _run(self) -> None:
        started = time.thread_time()
        try:
            while not self._stop.is_set():
                with self._lock:
                    for track, folder in self.folders.items():
                        if self._changed(folder):
                            listed = listed_segments(folder)
                            done = [s for s in listed if os.path.exists(s[1])]
                            if len(done) < len(listed):
                                self._seen.pop(folder)  # listed before it was renamed: read it again
                            self._report_new(track, done)
                self._stop.wait(self.poll_seconds)
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _changed(self, folder: str) -> bool:
        """ffmpeg renames each new text over the last: a new inode, whatever the clock's granularity."""
        try:
            stat = os.stat(os.path.join(folder, PLAYLIST))
        except OSError:
            return False
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._seen.get(folder) == key:
            return False
        self._seen[folder] = key
        return True

    def _report_new(self, track: str, listed: list[tuple[int, str, float]]) -> None:
        """In seq order, from the first not reported, and only while contiguous."""
        for seq, path, duration in sorted(listed):
            if seq < self.next_seq[track]:
                continue
            if seq != self.next_seq[track]:
                return
            self._report(track, seq, path, duration)
            self.next_seq[track] = seq + 1

    def _report(self, track: str, seq: int, path: str, duration: float) -> None:
        try:
            self.on_segment(track, seq, path, round(duration, 6))
        except Exception:  # a callback's failure is early playback's, never the encode's
            log.exception("Early segment %s/%d not handed on", track, seq)
