"""Segments as ffmpeg finishes them: a thread beside the encode, never in its path.

ffmpeg's HLS muxer with ``hls_playlist_type vod`` (what our encodes use) writes ``index.m3u8`` only when it exits
(checked with ffmpeg 5.1), and writes each segment under its final name; it closes segment N before it opens N+1.
So segment N is complete once N+1 exists; its duration is the distance between the two segments' first video
PTS — what ffmpeg's own EXTINF says, since it cuts on those packets. The last segment (no N+1) and any not yet
reported are reported from ffmpeg's playlist once it exits (``finish``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import m3u8

from vodflow.media.encode.ffmpeg import segment_name
from vodflow.media.encode.segmented import segment_seq
from vodflow.media.package.mpegts import PACKET, PTS_HZ, index_segment

log = logging.getLogger(__name__)
PTS_WRAP = 1 << 33
HEAD_BYTES = 64 * PACKET  # enough for the PAT, the PMT and the first video PES header

# (track, seq, path, duration): called on the watcher's thread, in seq order per track; keep it short.
OnSegment = Callable[[str, int, str, float], None]


def first_pts(path: str) -> int | None:
    """The first video PTS of a TS segment, from its head (None while too little of it is written)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    head = head[: len(head) - len(head) % PACKET]
    try:
        pes = index_segment(head).pes
    except (ValueError, IndexError):
        return None
    return next((p.pts for p in pes if p.pts is not None), None)


class SegmentWatcher:
    """Watches ffmpeg HLS output folders (track → folder) and calls ``on_segment`` with each newly completed
    segment. ``start`` before ffmpeg runs; ``finish`` after it exited well (reports the rest, returns each
    track's last seq), ``stop`` after a failure (reports nothing more)."""

    def __init__(self, folders: dict[str, str], on_segment: OnSegment, poll_seconds: float = 0.25) -> None:
        self.folders, self.on_segment, self.poll_seconds = dict(folders), on_segment, poll_seconds
        self.next_seq = dict.fromkeys(self.folders, 0)  # the first seq not reported yet, per track
        self._pts: dict[tuple[str, int], int] = {}
        self.cpu_seconds = 0.0  # the watching thread's, once stopped: what watching costs
        self._stop = threading.Event()
        self._lock = threading.Lock()
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
                playlist = os.path.join(folder, "index.m3u8")
                entries = m3u8.load(playlist).segments if os.path.exists(playlist) else []
                seqs = []
                for entry in entries:
                    seq = segment_seq(os.path.basename(entry.uri))
                    if seq is None:
                        continue
                    seqs.append(seq)
                    if seq >= self.next_seq[track]:
                        self._report(track, seq, os.path.join(folder, entry.uri), float(entry.duration))
                        self.next_seq[track] = seq + 1
                last[track] = max(seqs) if seqs else None
        return last

    def _run(self) -> None:
        started = time.thread_time()
        try:
            while not self._stop.is_set():
                with self._lock:
                    for track in self.folders:
                        self._scan(track)
                self._stop.wait(self.poll_seconds)
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _scan(self, track: str) -> None:
        folder = self.folders[track]
        while not self._stop.is_set():
            seq = self.next_seq[track]
            following = os.path.join(folder, segment_name(seq + 1))
            if not os.path.exists(following):
                return
            start, end = self._first_pts(track, seq), self._first_pts(track, seq + 1)
            if start is None or end is None:
                return  # N+1 has too few bytes yet: next poll
            self._report(track, seq, os.path.join(folder, segment_name(seq)), ((end - start) % PTS_WRAP) / PTS_HZ)
            self.next_seq[track] = seq + 1
            self._pts.pop((track, seq), None)

    def _first_pts(self, track: str, seq: int) -> int | None:
        key = (track, seq)
        if key not in self._pts:
            found = first_pts(os.path.join(self.folders[track], segment_name(seq)))
            if found is None:
                return None
            self._pts[key] = found
        return self._pts[key]

    def _report(self, track: str, seq: int, path: str, duration: float) -> None:
        try:
            self.on_segment(track, seq, path, round(duration, 6))
        except Exception:  # a callback's failure is early playback's, never the encode's
            log.exception("Early segment %s/%d not handed on", track, seq)
