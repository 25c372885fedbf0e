"""A batch of runs as a timeline, from Airflow's own timestamps (the metadata DB's task instances and runs): where
the wall time of a batch goes that is not encoding. Read it before the stack's databases are dropped.

Per task (prepare, transcode, publish): scheduled → queued (the scheduler's loop and the pool), queued → running
(the broker, the worker's slot, the task SDK supervisor's start-up), running → done. And for the batch: trigger →
first prepare running, first → last transcode with the stretches where no transcode ran, last transcode end →
last publish running → last run done.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa


@dataclass(frozen=True)
class TaskTimes:
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    scheduled: datetime | None
    queued: datetime | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class RunTimes:
    run_id: str
    state: str | None
    queued: datetime  # the trigger
    start: datetime | None
    end: datetime | None


def read_batch(metadata_url: str, dag_id: str) -> tuple[list[RunTimes], list[TaskTimes]]:
    """Every run of ``dag_id`` and their task instances (the metadata DB at ``metadata_url``)."""
    engine = sa.create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            runs = [RunTimes(*row) for row in conn.execute(sa.text(
                "SELECT run_id, state, queued_at, start_date, end_date FROM dag_run WHERE dag_id = :d"),
                {"d": dag_id})]
            tasks = [TaskTimes(*row) for row in conn.execute(sa.text(
                "SELECT run_id, task_id, map_index, state, scheduled_dttm, queued_dttm, start_date, end_date "
                "FROM task_instance WHERE dag_id = :d"), {"d": dag_id})]
    finally:
        engine.dispose()
    return runs, tasks


def _gap(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


def _stats(values: list[float | None]) -> str:
    found = sorted(v for v in values if v is not None)
    if not found:
        return "—"
    return (f"mean {statistics.fmean(found):5.2f}  p50 {statistics.median(found):5.2f}  "
            f"max {found[-1]:5.2f}  sum {sum(found):6.1f}")


def idle_stretches(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Between the first start and the last end: the stretches covered by none of ``intervals``."""
    gaps, covered = [], None
    for start, end in sorted(intervals):
        if covered is not None and start > covered:
            gaps.append((covered, start))
        covered = end if covered is None else max(covered, end)
    return gaps


def concurrency(intervals: list[tuple[datetime, datetime]]) -> dict[int, float]:
    """Seconds spent with k of ``intervals`` open at once, for each k (from the first start to the last end)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    spent: dict[int, float] = {}
    level, last = 0, None
    for at, step in edges:
        if last is not None:
            spent[level] = spent.get(level, 0.0) + (at - last).total_seconds()
        level, last = level + step, at
    return spent


def report(runs: list[RunTimes], tasks: list[TaskTimes]) -> list[str]:
    """The timeline as printable lines (seconds after the first trigger)."""
    if not runs:
        return ["timeline: no runs"]
    t0 = min(r.queued for r in runs)

    def at(value: datetime | None) -> str:
        return f"{(value - t0).total_seconds():7.2f}" if value is not None else "    —  "

    lines = [f"timeline of {len(runs)} runs, seconds after the first trigger:"]
    for task_id in ("prepare", "transcode", "publish"):
        mine = [t for t in tasks if t.task_id == task_id]
        lines.append(f"  {task_id:9s} scheduled→queued {_stats([_gap(t.scheduled, t.queued) for t in mine])}")
        lines.append(f"  {'':9s} queued→running   {_stats([_gap(t.queued, t.start) for t in mine])}")
        lines.append(f"  {'':9s} running          {_stats([_gap(t.start, t.end) for t in mine])}")
    by_run: dict[str, dict[str, list[TaskTimes]]] = {}
    for t in tasks:
        by_run.setdefault(t.run_id, {}).setdefault(t.task_id, []).append(t)
    hops = {"trigger→prepare queued": [], "prepare end→transcode queued": [], "transcode end→publish queued": [],
            "publish end→run done": []}
    for run in runs:
        mine = by_run.get(run.run_id, {})
        prepare, transcodes, publish = (mine.get(k, []) for k in ("prepare", "transcode", "publish"))
        if prepare:
            hops["trigger→prepare queued"].append(_gap(run.queued, prepare[0].queued))
        if prepare and transcodes:
            hops["prepare end→transcode queued"].append(_gap(prepare[0].end, min(
                (t.queued for t in transcodes if t.queued), default=None)))
        if transcodes and publish:
            hops["transcode end→publish queued"].append(_gap(max(
                (t.end for t in transcodes if t.end), default=None), publish[0].queued))
        if publish:
            hops["publish end→run done"].append(_gap(publish[0].end, run.end))
    for name, values in hops.items():
        lines.append(f"  {name:30s} {_stats(values)}")
    transcodes = [(t.start, t.end) for t in tasks if t.task_id == "transcode" and t.start and t.end]
    prepares = [t for t in tasks if t.task_id == "prepare" and t.start]
    publishes = [t for t in tasks if t.task_id == "publish" and t.start and t.end]
    ends = [r.end for r in runs if r.end]
    if transcodes and prepares and publishes and ends:
        first_prepare = min(prepares, key=lambda t: t.start)
        last_publish = max(publishes, key=lambda t: t.end)
        first_tc, last_tc = min(s for s, _ in transcodes), max(e for _, e in transcodes)
        gaps = idle_stretches(transcodes)
        end = max(ends)
        lines += [
            f"  first prepare queued {at(first_prepare.queued)}, running {at(first_prepare.start)}, "
            f"done {at(first_prepare.end)}",
            f"  first transcode running {at(first_tc)}; last transcode done {at(last_tc)}",
            f"  no transcode running within that: {len(gaps)} stretches, "
            f"{sum(_gap(a, b) for a, b in gaps):.2f} s in all"
            + (f" (longest {max(_gap(a, b) for a, b in gaps):.2f} s)" if gaps else ""),
            "  transcodes running at once (s): " + ", ".join(
                f"{k}: {v:.1f}" for k, v in sorted(concurrency(transcodes).items())),
            f"  last publish queued {at(last_publish.queued)}, running {at(last_publish.start)}, "
            f"done {at(last_publish.end)}; last run done {at(end)}",
            f"  not encoding: before the first transcode {_gap(t0, first_tc):.2f} s + between "
            f"{sum(_gap(a, b) for a, b in gaps):.2f} s + after the last {_gap(last_tc, end):.2f} s",
        ]
    return lines
