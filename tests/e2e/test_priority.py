"""Priorities, the place in line and the ETA through the real embedded stack (the priority check also runs on the
Celery stack: test_celery.py). Transcode items wait for the `transcode` pool in the scheduler, which hands a free
slot to the highest `priority_weight` (set from the run's conf by vodflow.priority's cluster policy). The pool is
closed (0 slots) while the videos queue up, so that every item is waiting when the slot opens, then given 1 slot:
everything runs one at a time, in the order the scheduler chose."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from vodflow.devtools.client import ApiError
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.pipeline.scratch import encoder_slot
from vodflow.priority import TRANSCODE_POOL, WEIGHTS

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
WAITING = ("scheduled", "queued", None)


def make_tiny(path: Path) -> Path:
    """A source that costs next to nothing to encode: only the order of the encodes matters."""
    make_sample(str(path), SampleSpec(160, 120, 1.0, "25", audio=False))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("prio") / "tiny.mp4")


def set_pool_slots(client, slots: int) -> None:
    """The `transcode` pool's size, through the REST API."""
    for attempt in range(3):  # SQLite's write lock can time out on a loaded machine (a 500): idempotent, again
        try:
            client.request("PATCH", f"/api/v2/pools/{TRANSCODE_POOL}", params={"update_mask": "slots"},
                           json={"pool": TRANSCODE_POOL, "slots": slots, "include_deferred": False})
            return
        except ApiError as exc:
            if exc.status_code < 500 or attempt == 2:
                raise


@contextlib.contextmanager
def pool_of(stack) -> Iterator[Callable[[int], None]]:
    """Sets the `transcode` pool's slots; its size is restored after."""
    before = stack.client.request("GET", f"/api/v2/pools/{TRANSCODE_POOL}")["slots"]
    try:
        yield lambda slots: set_pool_slots(stack.client, slots)
    finally:
        set_pool_slots(stack.client, before)


@pytest.fixture
def pool(embedded_stack) -> Iterator[Callable[[int], None]]:
    with pool_of(embedded_stack) as set_slots:
        yield set_slots


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prio") / "short.mp4"
    # Long enough to encode for a few seconds on an idle machine, so a poll every 0.3 s sees it encoding.
    make_sample(str(path), SampleSpec(1280, 720, 8.0, "25", audio=False))
    return path


def trigger(stack, source: Path, name: str, priority: str | None, ladder: list[str] | None = None) -> str:
    key = f"uploads/prio-{uuid.uuid4().hex[:8]}/{name}.mp4"
    stack.storage.client.upload_file(str(source), "vodflow", key)
    conf = {"source": f"s3://vodflow/{key}", "title": name, "ladder": ladder or ["240p"]}
    if priority:
        conf["priority"] = priority
    # A run id of our own: a trigger answered 500 (the embedded stack's SQLite locked for a moment on a loaded
    # machine) is sent again safely.
    return stack.client.trigger(DAG, conf, run_id=f"prio-{name}-{uuid.uuid4().hex[:8]}", attempts=4)


def transcode_tis(stack, run_id: str) -> list[dict]:
    return [t for t in stack.client.task_instances(DAG, run_id) if t["task_id"] == "transcode"]


def wait_until_waiting(stack, runs: dict[str, str], timeout: float = 300) -> None:
    """Until every run's transcode items exist and wait for a slot (prepare done)."""
    deadline = time.monotonic() + timeout
    while True:
        states = {name: [t["state"] for t in transcode_tis(stack, run)] for name, run in runs.items()}
        if all(s and all(x in WAITING for x in s) and "scheduled" in s for s in states.values()):
            return
        assert time.monotonic() < deadline, f"transcode items not all waiting: {states}"
        time.sleep(1)


def start_order(stack, source: Path, set_slots: Callable[[int], None]) -> tuple[dict[str, str], list[str]]:
    """Three normal videos wait for a slot, then a low and a high one are triggered (the high last); one slot
    opens. Returns the runs by name and the names in the order their transcode items started (printed)."""
    set_slots(0)  # every slot busy: nothing transcodes until it opens
    runs = {f"normal-{i}": trigger(stack, source, f"normal-{i}", None) for i in range(1, 4)}
    wait_until_waiting(stack, runs)
    runs["low"] = trigger(stack, source, "low", "low")
    runs["high"] = trigger(stack, source, "high", "high")  # triggered last
    wait_until_waiting(stack, runs)
    weights = {name: {t["priority_weight"] for t in transcode_tis(stack, run)} for name, run in runs.items()}
    assert weights == {**{f"normal-{i}": {WEIGHTS["normal"]} for i in range(1, 4)},
                       "low": {WEIGHTS["low"]}, "high": {WEIGHTS["high"]}}
    set_slots(1)  # one at a time: each start is the scheduler's choice among all that wait
    for run in runs.values():
        assert stack.client.wait_for_run(DAG, run, timeout=600)["state"] == "success"
    starts = {name: min(t["start_date"] for t in transcode_tis(stack, run)) for name, run in runs.items()}
    order = sorted(starts, key=starts.get)
    print("transcode start order:", ", ".join(f"{name} {starts[name]}" for name in order))
    return runs, order


def test_high_priority_takes_the_next_free_slot_and_low_runs_last(embedded_stack, tiny, pool):
    _, order = start_order(embedded_stack, tiny, pool)
    assert order[0] == "high", order
    assert order[-1] == "low", order


def where(video: dict) -> object:
    """A video's place as the API tells it: its place in line; past it, while transcoding, encoding; or its status."""
    if video["queue_position"] is not None:
        return video["queue_position"]
    return "encoding" if video["status"] == "transcoding" else video["status"]


def test_a_waiting_video_reports_its_place_then_its_eta(embedded_stack, short, pool):
    """C waits behind B (high priority): position 2, then 1 while B encodes, then it encodes (with an ETA)."""
    stack = embedded_stack
    pool(0)
    runs = {"B": trigger(stack, short, "B", "high"), "C": trigger(stack, short, "C", None)}
    wait_until_waiting(stack, runs)
    [video] = stack.client.request("GET", "/vodflow/api/videos", params={"run_id": runs["C"]})["videos"]
    path = f"/vodflow/api/videos/{video['id']}"
    seen: list[object] = []
    etas: list[tuple[float, str]] = []

    def look(until: Callable[[object], bool], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            body = stack.client.request("GET", path)
            place = where(body)
            if not seen or seen[-1] != place:
                seen.append(place)
            if body["eta"]:
                etas.append((time.time(), body["eta"]))
            if until(place):
                return
            assert time.monotonic() < deadline, f"C went {seen}"
            time.sleep(0.3)

    look(lambda place: place == 2)
    body = stack.client.request("GET", path)
    assert body["expected_start"] is not None and body["priority"] == "normal"
    [first] = stack.client.request("GET", "/vodflow/api/videos", params={"run_id": runs["B"]})["videos"]
    assert (first["priority"], first["queue_position"]) == ("high", 1)
    pool(1)  # B (high) takes the slot...
    deadline = time.monotonic() + 300
    while not any(t["state"] == "running" for t in transcode_tis(stack, runs["B"])):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pool(0)  # ...and C waits, first in line, for as long as the test looks
    look(lambda place: place == 1)
    pool(1)
    look(lambda place: place in ("ready", "failed"))
    print("C went", seen, "ETAs", etas)
    assert seen[:3] == [2, 1, "encoding"], seen
    assert stack.client.wait_for_run(DAG, runs["C"], timeout=600)["state"] == "success"


def minute_long(path: Path) -> Path:
    """60 s of 720p30 with sound for next to nothing: a 2 s sample repeated by stream copy (no second encode)."""
    clip = path.with_name("clip.mp4")
    make_sample(str(clip), SampleSpec(1280, 720, 2.0, "30", audio=True))
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-stream_loop", "29",  # noqa: S603
                    "-i", str(clip), "-c", "copy", str(path)], check=True, timeout=60)
    return path


def test_eta_of_a_minute_long_encode(embedded_stack, tmp_path):
    """Once 20 % is done, the API's ETA is within 25 % (of the encode's length) of when the encode really ends.

    The encode runs on one thread: the test holds all but one of the stack's encoder slots (what other encodes on
    this machine hold), so the pipeline gives this encode one core's share (vodflow.pipeline.scratch): about a
    minute of wall time for about a minute of one core, leaving the rest to the session `make test` runs alongside."""
    stack = embedded_stack
    source = minute_long(tmp_path / "minute.mp4")
    with contextlib.ExitStack() as others:
        for _ in range(max(1, len(os.sched_getaffinity(0)) - 1)):
            others.enter_context(encoder_slot(stack.state_dir / "scratch"))
        run = trigger(stack, source, "minute", None, ladder=["720p", "480p", "360p"])
        first_seen, at_20, estimate, ended, duration = follow_the_encode(stack, run)
    encoding = ended - first_seen
    error = (estimate - ended) / encoding
    print(f"ETA at 20 % ({at_20 - first_seen:.1f} s in): {estimate - ended:+.1f} s from the real end "
          f"({encoding:.1f} s of encoding) = {100 * error:+.1f} %")
    assert duration == pytest.approx(60, abs=0.5), "not the minute-long source this test is about"
    assert abs(error) <= 0.25
    assert stack.client.wait_for_run(DAG, run, timeout=300)["state"] == "success"


def follow_the_encode(stack, run: str, timeout: float = 900) -> tuple[float, float, float, float, float]:
    """Polls the video's API: when it was first seen encoding, when (and what) its ETA was once 20 % was done,
    and when it was last seen encoding (epoch seconds); and its duration."""
    video_id = None
    deadline = time.monotonic() + timeout
    first_seen = at_20 = estimate = last_seen = None
    while True:
        assert time.monotonic() < deadline, "the encode did not end in time"
        if video_id is None:
            found = stack.client.request("GET", "/vodflow/api/videos", params={"run_id": run})["videos"]
            video_id = found[0]["id"] if found else None
            time.sleep(0.5)
            continue
        body = stack.client.request("GET", f"/vodflow/api/videos/{video_id}")
        now = time.time()
        running = any(r["status"] == "running" for r in body["renditions"])
        if running:
            first_seen, last_seen = first_seen or now, now
            if estimate is None and body["progress"] >= 20 and body["eta"]:
                at_20, estimate = now, datetime.fromisoformat(body["eta"].replace("Z", "+00:00")).timestamp()
        elif first_seen is not None:
            assert estimate is not None, f"no ETA once 20 % was done: {body}"
            return first_seen, at_20, estimate, (last_seen + now) / 2, body["duration"]  # ended between two looks
        time.sleep(0.5)
