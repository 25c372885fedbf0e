"""The control plane at scale: N tiny videos (1 s, 160x120) triggered at once on the Celery stack with its default
caps, so that encoding costs next to nothing and what is measured is Airflow's (and vodflow's) cost per video.
Prints (exit 1 only if a video did not end ready):

- the caps the stack ran with (max_active_runs, the transcode pool, parallelism, the workers' concurrency);
- videos per minute (first trigger → last ready) and trigger → ready p50/p95 (the run's trigger in Airflow's
  metadata DB → `finished_at` of the video in the catalog);
- CPU seconds per video of each process of the stack (`cpumeter.CpuMeter`: scheduler, api-server,
  dag-processor, triggerer, each Celery worker, the stack's Postgres backends, Postgres's shared processes,
  Redis, the S3 endpoint), the workers split into ffmpeg/ffprobe and the rest (the task SDK supervisor, the task
  process's start-up and vodflow's own code);
- from those, the uploads a day one process of each kind carries when it is the bottleneck: 86,400 s × headroom
  ÷ its CPU s per video (one process uses at most one core: the scheduler's loop and a single api-server worker
  are single-threaded in Python);
- the batch's timeline from the task instances' timestamps (`timeline.py`).

The bench polls the catalog (its own Postgres connection, not counted), never the api-server, so the
api-server's figure is what triggering and running the videos cost it.

    .venv/bin/python bench/control_plane.py                 # 200 videos
    .venv/bin/python bench/control_plane.py --videos 20     # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, celery_bench_stack, s3_client
from cpumeter import stack_meter
from timeline import read_batch, report

from vodflow.catalog import make_engine, videos
from vodflow.devtools.devstack import AirflowStack, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample

WORKERS = ("default-1", "transcode-1")
ENCODERS = {"ffmpeg", "ffprobe"}


class EncoderSampler:
    """CPU of the ffmpeg/ffprobe processes of the workers' sessions, read from /proc every ``interval`` s.

    A finished ffmpeg's whole CPU lands in its parent's cutime + cstime when the task process waits for it: per
    parent, the larger of that (its highest reading) and the last readings of its ffmpeg children is counted. A
    task process that exits within one interval of its ffmpeg, before a reading, leaves only the last reading
    of that ffmpeg: a lower bound, so the rest (supervisor, task start-up) is an upper bound."""

    def __init__(self, sessions: dict[int, str], interval: float = 0.1) -> None:
        self.sessions = sessions  # session id -> worker label
        self.interval = interval
        self.children: dict[tuple[int, int], tuple[tuple[int, int], str, int]] = {}  # ff key -> parent, label, own
        self.parents: dict[tuple[int, int], int] = {}  # parent key -> highest cutime + cstime seen
        self.parent_base: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="encoder-sampler", daemon=True)

    def __enter__(self) -> EncoderSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        procs = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            f = stat[stat.rindex(")") + 2:].split()
            if int(f[3]) in self.sessions:
                procs[int(entry.name)] = (comm, int(f[1]), int(f[3]), int(f[19]), int(f[11]) + int(f[12]),
                                          int(f[13]) + int(f[14]))
        for pid, (comm, ppid, sid, start, own, _) in procs.items():
            if comm not in ENCODERS or ppid not in procs:
                continue
            parent = procs[ppid]
            parent_key = (ppid, parent[3])
            self.children[(pid, start)] = (parent_key, self.sessions[sid], own)
            self.parent_base.setdefault(parent_key, parent[5])  # what it had reaped before we watched it
        for key in list(self.parent_base):
            if key[0] in procs and procs[key[0]][3] == key[1]:
                self.parents[key] = max(self.parents.get(key, 0), procs[key[0]][5])

    def by_worker(self) -> dict[str, float]:
        """CPU seconds of ffmpeg/ffprobe per worker label."""
        own_by_parent: dict[tuple[int, int], tuple[str, int]] = {}
        for parent, label, own in self.children.values():
            seen = own_by_parent.get(parent, (label, 0))
            own_by_parent[parent] = (label, seen[1] + own)
        totals: dict[str, float] = {}
        for parent, (label, own) in own_by_parent.items():
            reaped = self.parents.get(parent, 0) - self.parent_base.get(parent, 0)
            totals[label] = totals.get(label, 0.0) + max(own, reaped) / os.sysconf("SC_CLK_TCK")
        return totals


def caps(stack: AirflowStack) -> str:
    config = stack.config
    concurrency = {c.name: c.args[c.args.index("--concurrency") + 1] for c in stack.components
                   if "--concurrency" in c.args}
    return (f"max_active_runs (max_active_videos) {config['AIRFLOW__VODFLOW__MAX_ACTIVE_VIDEOS']}, transcode pool "
            f"{stack.values['TRANSCODE_SLOTS']} slots, [core] parallelism {config['AIRFLOW__CORE__PARALLELISM']}, "
            f"worker concurrency {concurrency}, scheduler idle sleep "
            f"{config.get('AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME', '1 (default)')} s")


def wait_all(catalog_url: str, count: int, timeout: float) -> dict[str, int]:
    """Poll the catalog until ``count`` videos are ready or failed."""
    engine = make_engine(catalog_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                statuses = dict(conn.execute(sa.select(videos.c.status, sa.func.count())
                                             .group_by(videos.c.status)).all())
            if statuses.get("ready", 0) + statuses.get("failed", 0) >= count or time.monotonic() > deadline:
                return statuses
            time.sleep(2.0)
    finally:
        engine.dispose()


def ready_times(catalog_url: str) -> dict[str, datetime]:
    """dag_run_id -> when its video became ready (the catalog's finished_at)."""
    engine = make_engine(catalog_url)
    try:
        with engine.connect() as conn:
            return {run: at for run, at in conn.execute(sa.select(videos.c.dag_run_id, videos.c.finished_at)
                                                        .where(videos.c.status == "ready"))}
    finally:
        engine.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle baseline")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after start-up before the "
                        "idle baseline")
    parser.add_argument("--headroom", type=float, default=0.5, help="share of one core a process may use")
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args()
    n = args.videos
    work = Path(tempfile.mkdtemp(prefix="vodflow-plane-"))
    src = work / "tiny.mp4"
    make_sample(str(src), SampleSpec(160, 120, 1.0, "30", audio=True))
    s3 = LocalS3(work).start(buckets=["vodflow"])
    try:
        with celery_bench_stack(work, s3.endpoint, "plane", triggerer=True) as (stack, catalog_url):
            print(f"{n} videos of 1 s 160x120 with audio, triggered at once; {os.cpu_count()} cores")
            print(f"caps (the stack's defaults): {caps(stack)}")
            meter = stack_meter(stack, s3, catalog_url)
            time.sleep(args.settle)  # the api-server finishes its own start-up for a while after it answers
            idle = meter.idle(args.idle)
            client = stack.client()
            keys = [f"bench/plane/{i:03d}-{uuid.uuid4().hex[:6]}.mp4" for i in range(n)]
            s3c = s3_client(s3.endpoint)
            for key in keys:
                s3c.upload_file(str(src), "vodflow", key)
            sessions = {stack.processes[w].proc.pid: w for w in WORKERS}
            with meter.window() as cpu, EncoderSampler(sessions) as encoders:
                started = time.monotonic()
                for key in keys:
                    client.trigger(DAG, {"source": f"s3://vodflow/{key}"})
                print(f"triggered {n} runs in {time.monotonic() - started:.1f} s")
                statuses = wait_all(catalog_url, n, args.timeout)
            runs, tasks = read_batch(stack.values["AIRFLOW_DB_URL"], DAG)
            ready = ready_times(catalog_url)
        print(f"videos: {statuses}")
        triggered = {r.run_id: r.queued for r in runs}
        latencies = [(ready[run] - at).total_seconds() for run, at in triggered.items() if run in ready]
        if latencies:
            span = (max(ready.values()) - min(triggered.values())).total_seconds()
            print(f"videos per minute             : {len(latencies) / span * 60:6.1f}  ({len(latencies)} ready in "
                  f"{span:.1f} s, first trigger → last ready)")
            print(f"trigger → ready               : p50 {statistics.median(latencies):6.1f} s  p95 "
                  f"{percentile(latencies, 95):6.1f} s  min {min(latencies):.1f}  max {max(latencies):.1f}")
        print("\n".join(report(runs, tasks)))
        print(f"\nidle baseline (CPU s per s, nothing to do, {idle.wall:.0f} s): " + ", ".join(
            f"{label} {seconds / idle.wall:.3f}" for label, seconds in sorted(idle.by_label.items())
            if seconds >= 0.005))
        print(f"CPU over the batch ({cpu.wall:.1f} s, first trigger → last ready): {cpu.seconds:.1f} CPU s, "
              f"{cpu.seconds / n:.3f} per video")
        ff = encoders.by_worker()
        print(f"{'process':22s} {'CPU s':>8s} {'per video':>10s} {'beyond idle':>11s} {'cores busy':>10s} "
              f"{'uploads/day':>12s}  (at {args.headroom:.0%} of one core; beyond idle: minus the idle baseline's "
              f"CPU per s over the batch)")
        rows = []
        for label, seconds in sorted(cpu.by_label.items(), key=lambda x: -x[1]):
            if label in ff:
                rows.append((f"{label} (ffmpeg)", ff[label]))
                rows.append((f"{label} (the rest)", seconds - ff[label]))
            else:
                rows.append((label, seconds))
        for label, seconds in rows:
            per = seconds / n
            base = 0.0 if "(ffmpeg)" in label else idle.by_label.get(label.split(" ")[0], 0.0) / idle.wall
            day = 86400 * args.headroom / per if per > 0 else float("inf")
            print(f"{label:22s} {seconds:8.2f} {per:10.3f} {(seconds - base * cpu.wall) / n:11.3f} "
                  f"{seconds / cpu.wall:10.2f} {day:12,.0f}")
        if cpu.postgres_server is not None:
            print(f"(the whole Postgres server over the window: {cpu.postgres_server:.2f} CPU s, every database)")
        return 0 if statuses.get("ready", 0) == n else 1
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
