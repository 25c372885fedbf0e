"""Load: N videos submitted within seconds on the Celery stack (`make soak`). Prints (exit 1 only if a video
did not end ready):

- whether every video ended `ready` and none is stuck;
- total wall time, trigger of the first → `ready` of the last;
- how busy the CPUs were from the first encode to the last (1 s samples of /proc/stat) and the longest stretch
  below half load (an idle gap between tasks would show here);
- the same work done by bare ffmpeg, video after video (each video's renditions in parallel), and the ratio;
- CPU seconds per upload (user + system) of the pipeline — every process of the stack, from the first trigger
  until the last run finished (`cpumeter.CpuMeter`) — and of bare ffmpeg (getrusage), and their ratio;
- the idle baseline: the stack's CPU per second with nothing to do, measured before the load, printed on its
  own (it is part of the pipeline's figure, not subtracted from it).

    .venv/bin/python bench/load.py [--videos 20] [--duration 10] [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, celery_bench_stack, s3_client
from cpumeter import CpuMeter, CpuUsage, stack_meter
from e2e import bare, idle_line
from timeline import read_batch, report

from vodflow.catalog import Catalog, make_engine, videos
from vodflow.devtools.devstack import AirflowStack, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample


def cpu_busy_sampler(samples: list[tuple[float, float]], stop: threading.Event) -> None:
    def read() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    last = read()
    while not stop.wait(1.0):
        now = read()
        total, idle = now[0] - last[0], now[1] - last[1]
        samples.append((time.monotonic(), 1 - idle / total if total else 0.0))
        last = now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle baseline (the stack's CPU "
                        "with nothing to do)")
    parser.add_argument("--max-active-videos", type=int, help="override the stack's default (to compare)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-load-"))
    src = work / "clip.mp4"
    make_sample(str(src), SampleSpec(1280, 720, args.duration, "30", audio=True))
    print(f"{args.videos} videos of {args.duration:g} s 720p30 with audio (ladder 720p/480p/360p); "
          f"{os.cpu_count()} cores")
    s3 = LocalS3(work).start(buckets=["vodflow"])
    try:
        def configure(stack: AirflowStack) -> None:
            if args.max_active_videos:
                stack.env["AIRFLOW__VODFLOW__MAX_ACTIVE_VIDEOS"] = str(args.max_active_videos)
            print(f"max_active_videos {stack.env['AIRFLOW__VODFLOW__MAX_ACTIVE_VIDEOS']}, transcode pool "
                  f"{stack.values['TRANSCODE_SLOTS']} slots")

        with celery_bench_stack(work, s3.endpoint, "load", configure) as (stack, catalog_url):
            meter = stack_meter(stack, s3, catalog_url)
            idle = meter.idle(args.idle)
            print(f"idle baseline, the stack's CPU: {idle_line(idle)}")
            wall, states, statuses, cpu = load(stack, catalog_url, s3_client(s3.endpoint), src, args.videos, meter)
            runs, tasks = read_batch(stack.values["AIRFLOW_DB_URL"], DAG)
            print("\n".join(report(runs, tasks)))
            ends = [r.end for r in runs if r.end]
            if ends:  # the same wall time from Airflow's timestamps (no polling interval in it)
                exact = (max(ends) - min(r.queued for r in runs)).total_seconds()
                print(f"pipeline wall time, first trigger → last run done (Airflow's timestamps): {exact:.1f} s")
        total_a = total_b = cpu_a = cpu_b = 0.0
        for _ in range(args.videos):
            run = bare(src, work / "bare", cpus=None)
            total_a, total_b = total_a + run.parallel, total_b + run.once
            cpu_a, cpu_b = cpu_a + run.parallel_cpu, cpu_b + run.once_cpu
        print(f"bare ffmpeg back to back (a)  : {total_a:7.1f} s  (each video's renditions in parallel)  "
              f"ratio {wall / total_a:.2f}  (goal ≤ 1.5)")
        print(f"bare ffmpeg back to back (b)  : {total_b:7.1f} s  (each video decoded once)              "
              f"ratio {wall / total_b:.2f}")
        if ends:
            print(f"ratio by Airflow's timestamps : (a) {exact / total_a:.2f}  (b) {exact / total_b:.2f}")
        n = args.videos
        print("CPU seconds per upload (user + system; pipeline: every process of the stack, first trigger → last "
              "run finished):")
        print(f"pipeline                      : {cpu.seconds / n:7.2f} CPU s  ({cpu.seconds:.1f} in all: "
              f"{cpu.breakdown()})")
        print(f"bare ffmpeg (a)               : {cpu_a / n:7.2f} CPU s  ratio {cpu.seconds / cpu_a:.2f}")
        print(f"bare ffmpeg (b)               : {cpu_b / n:7.2f} CPU s  ratio {cpu.seconds / cpu_b:.2f}  (goal ≤ 1.3)")
        print(f"idle baseline (not subtracted above): {idle.seconds / idle.wall:.3f} CPU s per s of the stack doing "
              f"nothing, i.e. {idle.seconds / idle.wall * cpu.wall / n:.2f} CPU s per upload over the "
              f"{cpu.wall:.1f} s of the load")
        return 0 if set(states) == {"success"} and statuses == {"ready": args.videos} else 1
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


def load(stack: AirflowStack, catalog_url: str, s3, src: Path, count: int,
         meter: CpuMeter) -> tuple[float, list[str], dict, CpuUsage]:
    """Trigger ``count`` runs at once; wait for all; print wall time and how busy the CPUs were; the stack's CPU
    over the same time."""
    client = stack.client()
    client.timeout = 120
    # Outside the watched prefix: this bench is an app that starts every run itself through Airflow's REST API,
    # which writes no claim until a run starts, and most of these runs wait queued behind max_active_videos
    # (the watcher's duplicates would stand down at register, but each would still cost a task).
    keys = [f"bench/load/{i:02d}-{uuid.uuid4().hex[:6]}.mp4" for i in range(count)]
    for key in keys:
        s3.upload_file(str(src), "vodflow", key)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=cpu_busy_sampler, args=(samples, stop), daemon=True)
    sampler.start()
    with meter.window() as cpu:
        started = time.monotonic()
        runs = [client.trigger(DAG, {"source": f"s3://vodflow/{key}"}) for key in keys]
        print(f"triggered {len(runs)} runs in {time.monotonic() - started:.1f} s")
        states = [client.wait_for_run(DAG, run_id, timeout=3600, poll=2.0)["state"] for run_id in runs]
        wall = time.monotonic() - started
    stop.set()
    catalog = Catalog(make_engine(catalog_url))
    with catalog.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(videos.c.status, sa.func.count()).group_by(videos.c.status)).all())
    catalog.engine.dispose()
    busy = [b for t, b in samples if t - started > 5]  # after the first encodes began
    gaps, longest, current = 0, 0.0, 0.0
    for _, b in samples:
        current = current + 1 if b < 0.5 else 0.0
        longest = max(longest, current)
        gaps += b < 0.5
    print(f"runs: {sorted(set(states))}  videos: {statuses}")
    print(f"pipeline wall time            : {wall:7.1f} s")
    print(f"CPU busy (mean of 1 s samples): {100 * sum(busy) / max(len(busy), 1):5.1f} %; "
          f"samples under 50 %: {gaps} of {len(samples)}; longest such stretch {longest:.0f} s")
    return wall, states, statuses, cpu


if __name__ == "__main__":
    sys.exit(main())
