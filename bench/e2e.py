"""End-to-end benchmark: REST trigger → video `ready` on a real Airflow stack, against bare ffmpeg doing the same
ladder on the same machine in the same run. Prints ratios and where the time and the CPU go; asserts nothing.

    .venv/bin/python bench/e2e.py                      # Celery stack, 30 s 1080p30 clip, default ladder
    .venv/bin/python bench/e2e.py --executor local     # the embedded LocalExecutor stack (make demo's)
    .venv/bin/python bench/e2e.py --duration 4 --runs 1 --idle 5   # a quick look
    .venv/bin/python bench/e2e.py --codecs h264,av1    # also each run with an AV1 ladder: the ratios

(a) bare ffmpeg, one process per rendition, all in parallel (what the DAG's mapped tasks do);
(b) bare ffmpeg, one process decoding once and splitting to every rendition.
The Celery stack uses this machine's Postgres and Redis (fresh databases, dropped afterwards).

Cost: CPU seconds (user + system) for the same work. The pipeline's: every process of the stack — api-server,
scheduler, dag-processor, workers with their task processes and ffmpeg, the S3 endpoint, the Postgres backends
of its databases and Postgres's shared processes, Redis — from the trigger request until the run has finished
(`cpumeter.CpuMeter` says how it is read from /proc and why that way). Bare ffmpeg's: getrusage of its
processes. Also the idle baseline: the same stack's CPU per second with nothing to do, measured before the
runs and printed on its own line; it is part of the pipeline figures (the control plane keeps running during
a run), never subtracted from them.

--pin (Celery only) is the production-like shape on a small machine: Airflow's control plane (api-server,
scheduler, dag-processor, default-queue worker) and the S3 endpoint on CPU 0, the transcode worker on CPU 1,
and bare ffmpeg on CPU 1 too, so both sides get the same encoding capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, celery_bench_stack, children_cpu, embedded_bench_stack, iso_seconds, probe_file, s3_client
from cpumeter import CpuMeter, CpuUsage, stack_meter

from vodflow.catalog import Catalog, make_engine, videos
from vodflow.devtools.devstack import AirflowStack, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import build_encode_command, build_multi_encode_command
from vodflow.media.options import EncoderSettings


class Bare(NamedTuple):
    """Bare ffmpeg doing one video's ladder: wall seconds and CPU seconds (user + system) of (a) and (b)."""

    parallel: float
    once: float
    parallel_cpu: float
    once_cpu: float


def bare(src: Path, work: Path, cpus: str | None = None) -> Bare:
    source = probe_file(src)
    renditions = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)
    settings = EncoderSettings()
    shutil.rmtree(work, ignore_errors=True)
    for r in renditions:
        (work / "a" / r.name).mkdir(parents=True)
        (work / "b" / r.name).mkdir(parents=True)
    pin = ["taskset", "-c", cpus] if cpus is not None else []
    cpu, started = children_cpu(), time.monotonic()
    procs = [subprocess.Popen([*pin, *build_encode_command(str(src), str(work / "a" / r.name), source, r,  # noqa: S603
                                                           settings)]) for r in renditions]
    assert all(p.wait() == 0 for p in procs)
    parallel, parallel_cpu = time.monotonic() - started, children_cpu() - cpu
    cpu, started = children_cpu(), time.monotonic()
    subprocess.run([*pin, *build_multi_encode_command(str(src), str(work / "b"), source, renditions,  # noqa: S603
                                                      settings)], check=True)
    return Bare(parallel, time.monotonic() - started, parallel_cpu, children_cpu() - cpu)


def _log_events(state: Path, run_id: str, map_index: int) -> dict[str, float]:
    """Timestamps of the transcode task's own log lines (download, ffmpeg start/end, upload)."""
    found: dict[str, float] = {}
    for path in state.glob(f"logs/dag_id={DAG}/run_id={run_id}/task_id=transcode/map_index={map_index}/attempt=*.log"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            at = iso_seconds(event["timestamp"])
            text = str(event.get("event", ""))
            found.setdefault("first", at)
            found["last"] = at
            for key, marker in (("source", "Source ready"), ("ffmpeg", "Running: ffmpeg"),
                                ("encoded", " segments, "), ("uploaded", "Uploaded ")):
                if marker in text:
                    found[key] = at
    return found


def run_pipeline(stack: AirflowStack, catalog: Catalog, storage_client, src: Path, label: str,
                 meter: CpuMeter, conf: dict | None = None) -> dict:
    key = f"sources/bench-{uuid.uuid4().hex[:6]}/{src.name}"  # not under watch_prefix: no second run
    storage_client.upload_file(str(src), "vodflow", key)
    client = stack.client()
    ready_at: dict[str, float] = {}
    first_transcode: dict[str, float] = {}
    run_holder: dict[str, str] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            run_id = run_holder.get("id")
            if run_id:
                with catalog.engine.connect() as conn:
                    status = conn.execute(sa.select(videos.c.status).where(videos.c.dag_run_id == run_id)).scalar()
                if status == "ready" and "t" not in ready_at:
                    ready_at["t"] = time.time()
                if "t" not in first_transcode:
                    tis = client.task_instances(DAG, run_id)
                    if any(t["task_id"] == "transcode" and t["state"] in ("running", "success") for t in tis):
                        first_transcode["t"] = time.time()
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with meter.window() as cpu:  # the trigger request → the run finished (every task, not just `ready`)
        started = time.time()
        run_holder["id"] = client.trigger(DAG, {"source": f"s3://vodflow/{key}", **(conf or {})})
        run = client.wait_for_run(DAG, run_holder["id"], timeout=1800, poll=0.5)
    stop.set()
    watcher.join()
    if run["state"] != "success" or "t" not in ready_at:
        raise RuntimeError(f"{label}: run {run['state']}")
    tis = client.task_instances(DAG, run_holder["id"])
    return {"label": label, "start": started, "ready": ready_at["t"] - started,
            "first_transcode": first_transcode.get("t", started) - started, "run_id": run_holder["id"], "tis": tis,
            "cpu": cpu}


def breakdown(result: dict, state: Path) -> None:
    t0 = result["start"]
    tis = sorted(result["tis"], key=lambda t: iso_seconds(t["start_date"]) or 0)
    print("  task timeline (s after the trigger request):")
    for ti in tis:
        name = ti["task_id"] + (f"[{ti['rendered_map_index']}]" if ti["rendered_map_index"] else "")
        start, end = iso_seconds(ti["start_date"]), iso_seconds(ti["end_date"])
        queued = iso_seconds(ti.get("queued_when"))
        line = (f"    {name:<20} queued {queued - t0:6.2f}  start {start - t0:6.2f}  end {end - t0:6.2f}"
                f"  ({end - start:5.2f})")
        if ti["task_id"] == "transcode":
            ev = _log_events(state, result["run_id"], ti["map_index"])
            if {"first", "source", "ffmpeg", "encoded", "uploaded"} <= ev.keys():
                line += (f"  start-up {ev['source'] - start:4.2f} (source {ev['source'] - ev['first']:4.2f})"
                         f"  encode {ev['encoded'] - ev['ffmpeg']:5.2f}  upload {ev['uploaded'] - ev['encoded']:4.2f}")
        print(line)
    transcodes = [t for t in tis if t["task_id"] == "transcode"]
    first_start = min(iso_seconds(t["start_date"]) for t in transcodes)
    last_end = max(iso_seconds(t["end_date"]) for t in transcodes)
    # The DAG's first task (`register`, or whatever it is called now) and `publish`, if there is one.
    first = next((t for t in tis if t["task_id"] == "register"), tis[0])
    publish = next((t for t in tis if t["task_id"] == "publish"), None)
    publish_note = (f" (publish {iso_seconds(publish['end_date']) - iso_seconds(publish['start_date']):.2f} s)"
                    if publish is not None else "")
    print(f"  before the first encode: {first_start - t0:.2f} s (trigger → {first['task_id']} start "
          f"{iso_seconds(first['start_date']) - t0:.2f} s); encodes {last_end - first_start:.2f} s; "
          f"last encode → ready {result['ready'] - (last_end - t0):.2f} s{publish_note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executor", choices=["celery", "local"], default="celery")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=2, help="measured runs (after one warm-up)")
    parser.add_argument("--pin", action="store_true", help="control plane on CPU 0, encoding on CPU 1")
    parser.add_argument("--codecs", default="", help="e.g. h264,av1: each run also encodes the same clip with "
                        "these codecs, and the ratios to the H.264-only run are printed")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle baseline (the stack's CPU "
                        "with nothing to do)")
    args = parser.parse_args()
    if args.pin and (args.executor != "celery" or (os.cpu_count() or 1) < 2):
        parser.error("--pin needs the Celery executor and at least 2 CPUs")

    work = Path(tempfile.mkdtemp(prefix="vodflow-bench-"))
    src = work / "clip-1080p30.mp4"
    make_sample(str(src), SampleSpec(1920, 1080, args.duration, "30", audio=True))
    warm = work / "warmup.mp4"
    make_sample(str(warm), SampleSpec(1920, 1080, 2.0, "30", audio=True))
    print(f"source: {src.stat().st_size / 1e6:.1f} MB, {args.duration:g} s 1080p30 with audio; {os.cpu_count()} cores")

    s3 = LocalS3(work, cpus="0" if args.pin else None).start(buckets=["vodflow"])

    def pin(stack: AirflowStack) -> None:
        for component in stack.components:
            component.cpus = "1" if component.name.startswith("transcode") else "0"

    started = (celery_bench_stack(work, s3.endpoint, "bench", configure=pin if args.pin else None)
               if args.executor == "celery" else embedded_bench_stack(work, s3.endpoint))
    try:
        with started as (stack, catalog_url):
            return measure(args, stack, catalog_url, s3_client(s3.endpoint), src, warm, work,
                           stack_meter(stack, s3, catalog_url))
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


def idle_line(idle: CpuUsage) -> str:
    per_second = {label: seconds / idle.wall for label, seconds in idle.by_label.items()}
    return (f"{idle.seconds / idle.wall:.3f} CPU s per s over {idle.wall:.1f} s with nothing to do "
            f"({CpuUsage(idle.wall, per_second).breakdown()})")


def measure(args: argparse.Namespace, stack: AirflowStack, catalog_url: str, s3, src: Path, warm: Path,
            work: Path, meter: CpuMeter) -> int:
    catalog = Catalog(make_engine(catalog_url))
    warmup = run_pipeline(stack, catalog, s3, warm, "warm-up", meter)
    print(f"warm-up run (2 s clip, cold workers): trigger → ready {warmup['ready']:.2f} s")
    idle = meter.idle(args.idle)
    print(f"idle baseline, the stack's CPU: {idle_line(idle)}")
    results, bares, codecs = [], [], []
    for i in range(args.runs):
        bares.append(bare(src, work / "bare", cpus="1" if args.pin else None))
        a, b = bares[-1].parallel, bares[-1].once
        results.append(run_pipeline(stack, catalog, s3, src, f"run {i + 1}", meter))
        r = results[-1]
        print(f"\nrun {i + 1}: pipeline trigger → ready {r['ready']:.2f} s | bare (a) per-rendition parallel "
              f"{a:.2f} s | bare (b) decode once {b:.2f} s | trigger → first transcode running "
              f"{r['first_transcode']:.2f} s")
        print(f"  CPU s: pipeline {r['cpu'].seconds:.2f} (trigger → run finished, {r['cpu'].wall:.2f} s) | bare (a) "
              f"{bares[-1].parallel_cpu:.2f} | bare (b) {bares[-1].once_cpu:.2f}")
        print(f"  pipeline CPU s by process: {r['cpu'].breakdown()}")
        breakdown(r, work / "stack")
        if args.codecs:
            codecs.append(run_pipeline(stack, catalog, s3, src, f"run {i + 1} codecs", meter,
                                       {"codecs": args.codecs.split(",")}))
            c = codecs[-1]
            print(f"  codecs {args.codecs}: trigger → ready {c['ready']:.2f} s ({c['ready'] / r['ready']:.2f}x the "
                  f"H.264-only run), CPU {c['cpu'].seconds:.2f} s ({c['cpu'].seconds / r['cpu'].seconds:.2f}x)")
            print(f"    CPU s by process: {c['cpu'].breakdown()}")
    pipeline = statistics.median(r["ready"] for r in results)
    a, b = statistics.median(x.parallel for x in bares), statistics.median(x.once for x in bares)
    pipeline_cpu = statistics.median(r["cpu"].seconds for r in results)
    a_cpu, b_cpu = statistics.median(x.parallel_cpu for x in bares), statistics.median(x.once_cpu for x in bares)
    run_wall = statistics.median(r["cpu"].wall for r in results)
    shape = "pinned: control plane CPU 0, encoding CPU 1" if args.pin else "everything shares every CPU"
    print(f"\n=== {args.executor} executor ({shape}), {args.duration:g} s 1080p30, default ladder, "
          f"median of {args.runs} ===")
    print(f"pipeline trigger → ready : {pipeline:7.2f} s")
    print(f"bare ffmpeg (a) parallel : {a:7.2f} s   ratio {pipeline / a:.2f}  (goal ≤ 1.15)")
    print(f"bare ffmpeg (b) once     : {b:7.2f} s   ratio {pipeline / b:.2f}  (goal ≤ 1.30)")
    print(f"trigger → first transcode running: {statistics.median(r['first_transcode'] for r in results):.2f} s"
          "  (goal ≤ 2 s)")
    print("CPU seconds per upload (user + system; pipeline: every process of the stack, trigger → run finished):")
    print(f"pipeline                 : {pipeline_cpu:7.2f} CPU s")
    print(f"bare ffmpeg (a) parallel : {a_cpu:7.2f} CPU s   ratio {pipeline_cpu / a_cpu:.2f}")
    print(f"bare ffmpeg (b) once     : {b_cpu:7.2f} CPU s   ratio {pipeline_cpu / b_cpu:.2f}  (goal ≤ 1.3)")
    print(f"idle baseline (not subtracted above): {idle.seconds / idle.wall:.3f} CPU s per s of the stack doing "
          f"nothing, i.e. {idle.seconds / idle.wall * run_wall:.2f} CPU s over a run's {run_wall:.2f} s")
    if codecs:
        ready, cpu = statistics.median(c["ready"] for c in codecs), statistics.median(c["cpu"].seconds for c in codecs)
        print(f"codecs {args.codecs}: trigger → ready {ready:7.2f} s   ratio to H.264 only {ready / pipeline:.2f}  "
              "(goal ≤ 2.2)")
        print(f"codecs {args.codecs}: CPU {cpu:7.2f} s   ratio to H.264 only {cpu / pipeline_cpu:.2f}  (goal ≤ 2.0: "
              "the other codecs add at most the H.264 ladder's CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
