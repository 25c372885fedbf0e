"""Load: N videos submitted within seconds on the Celery stack (`make soak`). Prints (exit 1 only if a video
did not end ready):

- whether every video ended `ready` and none is stuck;
- total wall time, trigger of the first → `ready` of the last;
- how busy the CPUs were from the first encode to the last (1 s samples of /proc/stat) and the longest stretch
  below half load (an idle gap between tasks would show here);
- the same work done by bare ffmpeg, video after video (each video's renditions in parallel), and the ratio.

    .venv/bin/python bench/load.py [--videos 20] [--duration 10]
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
from e2e import bare

from vodflow.catalog import Catalog, make_engine, videos
from vodflow.devstack import AirflowStack, LocalS3
from vodflow.samples import SampleSpec, make_sample


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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-load-"))
    src = work / "clip.mp4"
    make_sample(str(src), SampleSpec(1280, 720, args.duration, "30", audio=True))
    print(f"{args.videos} videos of {args.duration:g} s 720p30 with audio (ladder 720p/480p/360p); "
          f"{os.cpu_count()} cores")
    s3 = LocalS3(work).start(buckets=["vodflow"])
    try:
        with celery_bench_stack(work, s3.endpoint, "load") as (stack, catalog_url):
            wall, states, statuses = load(stack, catalog_url, s3_client(s3.endpoint), src, args.videos)
        total_a = total_b = 0.0
        for _ in range(args.videos):
            a, b = bare(src, work / "bare", cpus=None)
            total_a, total_b = total_a + a, total_b + b
        print(f"bare ffmpeg back to back (a)  : {total_a:7.1f} s  (each video's renditions in parallel)  "
              f"ratio {wall / total_a:.2f}")
        print(f"bare ffmpeg back to back (b)  : {total_b:7.1f} s  (each video decoded once)              "
              f"ratio {wall / total_b:.2f}")
        return 0 if set(states) == {"success"} and statuses == {"ready": args.videos} else 1
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


def load(stack: AirflowStack, catalog_url: str, s3, src: Path, count: int) -> tuple[float, list[str], dict]:
    """Trigger ``count`` runs at once; wait for all; print wall time and how busy the CPUs were."""
    client = stack.client()
    client.timeout = 120
    keys = [f"uploads/load/{i:02d}-{uuid.uuid4().hex[:6]}.mp4" for i in range(count)]
    for key in keys:
        s3.upload_file(str(src), "vodflow", key)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=cpu_busy_sampler, args=(samples, stop), daemon=True)
    sampler.start()
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
    return wall, states, statuses


if __name__ == "__main__":
    sys.exit(main())
