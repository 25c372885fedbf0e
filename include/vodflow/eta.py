"""When a video will start encoding, and when it will be done: estimates from what was measured. Pure.

An encoding video's end: its own measured rate (progress over the time since its first item started), which
already includes this machine's load and the video's content. A waiting video's start: the transcode slots
simulated first come, first served: each slot frees when its encoding video's ETA comes, then takes the next video
ahead in the queue for that video's expected encode time (its source seconds × the mean encode seconds per source
second of recent videos); the video starts when a slot is free after all those ahead.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_PROGRESS = 1.0  # % done before a rate means anything (the first segment's setup dominates below it)


@dataclass(frozen=True)
class EncodeRate:
    """Slot-seconds of encoding per source second, from recent videos; ``fallback_seconds``: one video's encode
    when its duration is not known yet (still waiting to be probed)."""

    seconds_per_source_second: float
    fallback_seconds: float

    def encode_seconds(self, duration: float | None) -> float:
        if duration and duration > 0:
            return duration * self.seconds_per_source_second
        return self.fallback_seconds


DEFAULT_RATE = EncodeRate(1.0, 60.0)  # before any video finished: real time, a minute


def measured_rate(samples: Iterable[tuple[float, float]], default: EncodeRate = DEFAULT_RATE) -> EncodeRate:
    """From (source seconds, encode slot-seconds) of recent videos: their totals' ratio (a long video weighs
    more, as it does in the queue), and their mean encode as the fallback."""
    kept = [(d, s) for d, s in samples if d > 0 and s > 0]
    if not kept:
        return default
    source, spent = sum(d for d, _ in kept), sum(s for _, s in kept)
    return EncodeRate(spent / source, spent / len(kept))


def encode_eta(progress: float, started_at: datetime | None, now: datetime) -> datetime | None:
    """When an encoding video will be done, from its measured progress (percent) since ``started_at``."""
    if started_at is None or progress < MIN_PROGRESS:
        return None
    if progress >= 100:
        return now
    elapsed = max(0.0, (now - started_at).total_seconds())
    return now + timedelta(seconds=elapsed * (100 - progress) / progress)


def expected_start(now: datetime, slots: int, busy_until: Sequence[datetime | None],
                   ahead_seconds: Sequence[float], fallback_busy_seconds: float = 0.0) -> datetime:
    """When the next waiting video gets a slot: ``slots`` slots, busy until each encoding video's end
    (``busy_until``; None: unknown, counted as ``fallback_busy_seconds`` from now), then each video ahead (encode
    seconds, in queue order) taking the earliest free slot."""
    slots = max(1, slots)
    free = [max(0.0, (end - now).total_seconds()) if end else fallback_busy_seconds for end in busy_until]
    free = sorted(free)[-slots:] if len(free) > slots else free  # more runs than slots: the longest hold them
    free += [0.0] * (slots - len(free))
    heapq.heapify(free)
    for seconds in ahead_seconds:
        heapq.heappush(free, heapq.heappop(free) + max(0.0, seconds))
    return now + timedelta(seconds=free[0])
