"""Encodes on one machine count each other (pipeline.scratch.encoder_slot) and share the cores out."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from types import SimpleNamespace

from vodflow.media.encode.chunks import Chunk
from vodflow.pipeline.scratch import encoder_slot, threads_per_encoder
from vodflow.pipeline.transcode import leads_playback
from vodflow.pipeline.work import ChunkOfVideo, WholeAudio


def _hold_a_slot(root: str, ready, release) -> None:
    with encoder_slot(Path(root)):
        ready.set()
        release.wait(30)


def test_running_encodes_are_counted_and_a_killed_one_stops_counting(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    releases = [ctx.Event() for _ in range(3)]  # one each: a process killed while waiting spoils its Event
    holders = []
    for release in releases:
        ready = ctx.Event()
        holder = ctx.Process(target=_hold_a_slot, args=(str(tmp_path), ready, release))
        holder.start()
        assert ready.wait(30)
        holders.append(holder)
    with encoder_slot(tmp_path) as running:
        assert running == 4
    os.kill(holders[0].pid, signal.SIGKILL)  # a killed task leaves its file; its lock went with it
    holders[0].join(10)
    with encoder_slot(tmp_path) as running:
        assert running == 3
    for release, holder in zip(releases[1:], holders[1:], strict=True):
        release.set()
        holder.join(10)
    with encoder_slot(tmp_path) as running:
        assert running == 1
    assert list((tmp_path / ".encoders").iterdir()) == []


def test_threads_are_the_encodes_share_of_the_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert threads_per_encoder(1, 0) == 0  # alone: x264 uses every core
    assert threads_per_encoder(2, 0) == max(1, cores // 2)
    assert threads_per_encoder(cores * 2, 0) == 1
    assert threads_per_encoder(4, 3) == 3  # a configured count stands


def test_the_first_chunk_leads_when_early_playback_is_on():
    on, off = (SimpleNamespace(settings=SimpleNamespace(early_playback=flag)) for flag in (True, False))
    first, second = ChunkOfVideo(Chunk(0, 0.0, 0, 900)), ChunkOfVideo(Chunk(1, 30.0, 900, 900))
    assert leads_playback(on, first)
    assert not leads_playback(on, second) and not leads_playback(off, first) and not leads_playback(on, WholeAudio())
