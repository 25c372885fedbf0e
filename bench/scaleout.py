"""Scale-out: one long video on 1 single-core transcode worker vs 2 (each pinned to its own core with taskset).
Prints times and ratios; asserts nothing.

    .venv/bin/python bench/scaleout.py [--duration 180] [--chunk 30]

Runs, on the Celery stack (this machine's Postgres and Redis, fresh databases):
  1. chunked, 1 worker   2. chunked, 2 workers   3. one task per rendition (no chunks), 2 workers
Goal: chunked with 2 workers ≥ 1.8× faster than with 1. It also times the two possible chunk shapes with bare
ffmpeg on one chunk — every rendition from one decode vs one process per rendition — in CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, celery_bench_stack, iso_seconds, probe_file, s3_client, wall_and_cpu

from vodflow.devtools.devstack import AirflowStack, Component, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode.chunks import build_chunk_command, plan_chunks
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.options import EncoderSettings


def chunk_shapes(src: Path, work: Path, chunk_seconds: float) -> tuple[float, float]:
    """CPU seconds for one chunk: all renditions from one decode, and one ffmpeg per rendition."""
    source = probe_file(src)
    renditions = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)
    chunk = plan_chunks(source.duration, renditions[0].fps, chunk_seconds)[1]
    settings = EncoderSettings(threads=1)
    work.mkdir(parents=True, exist_ok=True)
    once = wall_and_cpu(build_chunk_command(str(src), str(work), source, chunk, renditions, settings))[1]
    apart = sum(wall_and_cpu(build_chunk_command(str(src), str(work), source, chunk, [r], settings))[1]
                for r in renditions)
    return once, apart


def timed_run(stack: AirflowStack, s3, src: Path, conf: dict) -> tuple[float, int]:
    key = f"sources/scaleout/{uuid.uuid4().hex[:8]}.mp4"  # not under watch_prefix: no second run
    s3.upload_file(str(src), "vodflow", key)
    client = stack.client()
    client.timeout = 120
    started = time.monotonic()
    run_id = client.trigger(DAG, {"source": f"s3://vodflow/{key}", **conf})
    run = client.wait_for_run(DAG, run_id, timeout=3600, poll=0.5)
    elapsed = time.monotonic() - started
    if run["state"] != "success":
        raise RuntimeError(f"run {run_id} ended {run['state']}")
    tasks = client.task_instances(DAG, run_id)
    t0 = min(iso_seconds(t["start_date"]) for t in tasks if t["start_date"])
    timeline = sorted((iso_seconds(t["start_date"]) - t0, iso_seconds(t["end_date"]) - t0, t["task_id"],
                       t.get("rendered_map_index") or "", iso_seconds(t["queued_when"]) - t0 if t.get("queued_when")
                       else 0.0) for t in tasks if t["start_date"])
    print("    task (queued) start-end: " + "; ".join(
        f"{name}{' ' + label if label and label != 'None' else ''} ({queued:.0f}) {start:.0f}-{end:.0f}s"
        for start, end, name, label, queued in timeline))
    return elapsed, sum(1 for t in tasks if t["task_id"] == "transcode")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--chunk", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (stack logs) and say where")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        parser.error("needs at least 2 CPUs")
    work = Path(tempfile.mkdtemp(prefix="vodflow-scaleout-"))
    src = work / "long-720p.mp4"
    make_sample(str(src), SampleSpec(1280, 720, args.duration, "30", audio=True))
    print(f"{args.duration:g} s 720p30 with audio, default ladder (720p/480p/360p), chunks of {args.chunk:g} s; "
          f"{os.cpu_count()} cores")
    once, apart = chunk_shapes(src, work / "shapes", args.chunk)
    print(f"one chunk, bare ffmpeg, 1 thread: every rendition from one decode {once:.1f} CPU s; one ffmpeg per "
          f"rendition {apart:.1f} CPU s ({apart / once:.2f}x)")

    s3 = LocalS3(work).start(buckets=["vodflow"])
    spare: list[Component] = []

    def configure(stack: AirflowStack) -> None:
        single_core_workers(stack)
        spare.append(stack.component("transcode-2"))  # started for the second run only
        stack.components.remove(spare[0])

    try:
        with celery_bench_stack(work, s3.endpoint, "scale", configure=configure, transcode_workers=2,
                                transcode_concurrency=1) as (stack, _):
            return compare(stack, spare[0], s3_client(s3.endpoint), src, args.chunk)
    finally:
        s3.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def single_core_workers(stack: AirflowStack) -> None:
    """Each transcode worker pinned to its own core, and x264 told so."""
    for component in stack.components:
        if component.name.startswith("transcode-"):
            component.cpus = str(int(component.name.rsplit("-", 1)[1]) - 1)
            component.env["AIRFLOW__VODFLOW__ENCODER_THREADS"] = "1"


def compare(stack: AirflowStack, second: Component, s3, src: Path, chunk_seconds: float) -> int:
    chunked = {"chunk_seconds": chunk_seconds}
    one, items = timed_run(stack, s3, src, chunked)
    print(f"chunked, 1 worker : {one:7.1f} s  ({items} work items)")
    stack.components.append(second)
    stack.start_component(second)
    time.sleep(5)
    two, items = timed_run(stack, s3, src, chunked)
    print(f"chunked, 2 workers: {two:7.1f} s  ({items} work items)   speed-up {one / two:.2f}x  (goal ≥ 1.8)")
    whole, items = timed_run(stack, s3, src, {"chunk_seconds": 0})
    print(f"per rendition, 2 workers: {whole:7.1f} s  ({items} work items)   speed-up over chunked 1 worker "
          f"{one / whole:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
