"""Early playback (issue 25): trigger → playable beside trigger → ready, on a real Airflow stack; and what the
early path costs an encode. Prints; asserts nothing.

    .venv/bin/python bench/playable.py --executor local                  # 30 s 1080p30, the embedded stack
    .venv/bin/python bench/playable.py --duration 600 --until-playable   # 10 min 1080p30: stop at playable
    .venv/bin/python bench/playable.py --encode-only --runs 2            # the encode with early playback off/on

The source is ffmpeg's default MP4, its index (moov) at the end: a reader over HTTP reads the head, seeks to the
end and back. ``--faststart`` puts it first. The local S3 endpoint (moto) answers each ranged GET of a big object
in about a second, an open-ended one in more (it copies the object): for the 914 MB 10-minute source that is
seconds per open that real S3 does not cost (``docs/speed.md``).

A warm-up run (a 2 s clip) first. Playable is read two ways: the API's flag (the catalog's ``playable_at``,
polled every 0.1 s) and when hls.js could start (the first segment of every rendition of ``early/master.m3u8``
listed in its EVENT playlist, read from S3 once the flag is up). Beside them, the floor: the pipeline's own
encode command run bare on the same source, and when ffmpeg closed the first lead-in piece (2 s) and the first
segment (6 s) of every rendition.
The early path's cost: the transcode task's log line ``early: N segment PUTs, L lead-in piece PUTs, M playlist
PUTs`` (segment PUTs replace the item's own; lead-in pieces, playlist PUTs and the master are extra), and
``--encode-only``: one whole-video encode
(prepare + transcode, in this process, against a local S3 and a SQLite catalog) with the
setting off and on, alternately, wall and CPU (this process and its ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import m3u8
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, celery_bench_stack, embedded_bench_stack, iso_seconds, probe_file, s3_client

from vodflow.catalog import Catalog, make_engine, videos
from vodflow.devtools.devstack import LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample

EARLY_LINE = re.compile(r"early: (\d+) segment PUTs, (\d+) lead-in piece PUTs, (\d+) playlist PUTs \(and the master\), "
                        r"([0-9.]+) CPU s")


def _text(s3, key: str) -> str | None:
    try:
        return s3.get_object(Bucket="vodflow", Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None


def hls_js_could_start(s3, prefix: str) -> bool:
    """Every variant of the early master lists a segment: what hls.js needs to start at 0."""
    master = _text(s3, prefix + "master.m3u8")
    if master is None:
        return False
    for variant in m3u8.loads(master).playlists:
        text = _text(s3, prefix + variant.uri)
        if text is None or not m3u8.loads(text).segments:
            return False
    return True


def timed_run(stack, catalog: Catalog, s3, src: Path, until_playable: bool) -> dict:
    key = f"sources/bench-{uuid.uuid4().hex[:6]}/{src.name}"  # not under watch_prefix: no second run
    with open(src, "rb") as body:  # one PUT: moto's multipart complete has answered 500 while the stack boots
        s3.put_object(Bucket="vodflow", Key=key, Body=body)
    client = stack.client()
    video_id = f"bench-{uuid.uuid4().hex[:8]}"
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        prefix = f"videos/{video_id}/v1/early/"
        while not stop.is_set():
            with catalog.engine.connect() as conn:
                row = conn.execute(sa.select(videos.c.status, videos.c.playable_at).where(
                    videos.c.id == video_id)).first()
            now = time.time()
            if row is not None and row.playable_at is not None:
                seen.setdefault("flag", now)
            if row is not None and row.status == "ready":
                seen.setdefault("ready", now)
            # S3 only once the flag is up (the same transaction lists every first segment): 50 GETs a second
            # from the start would take CPU from the encode being measured.
            if "flag" in seen and "hls" not in seen and hls_js_could_start(s3, prefix):
                seen.setdefault("hls", now)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.time()
    # Unchunked, whatever the length (bench/early_chunks.py measures chunked runs).
    run_id = client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id, "chunk_seconds": 0})
    try:
        while True:
            if until_playable and "flag" in seen and "hls" in seen:
                break
            run = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                time.sleep(0.3)  # the watcher's last look
                break
            time.sleep(0.5)
    finally:
        stop.set()
        watcher.join()
    steps = {}  # where the time went: each task's start and end, against the trigger
    for ti in client.task_instances(DAG, run_id):
        for edge in ("start", "end"):
            if ti.get(f"{edge}_date"):
                steps[f"{ti['task_id']} {edge}"] = iso_seconds(ti[f"{edge}_date"]) - started
    return {"run_id": run_id, "video_id": video_id, "steps": steps,
            **{name: seen[name] - started for name in ("flag", "hls", "ready") if name in seen}}


def early_costs(state: Path, run_id: str) -> tuple[int, int, int, float] | None:
    for path in state.glob(f"logs/dag_id={DAG}/run_id={run_id}/task_id=transcode/**/*.log"):
        for line in path.read_text().splitlines():
            found = EARLY_LINE.search(line)
            if found:
                return int(found.group(1)), int(found.group(2)), int(found.group(3)), float(found.group(4))
    return None


def bare_first_segment(work: Path, src: Path, whole: bool) -> tuple[float, float, float | None]:
    """The pipeline's whole-video command with early playback's lead-in (every rendition, one decode) run bare:
    when ffmpeg has closed the first lead-in piece of every rendition, the first 6 s segment of every rendition,
    and when it exited (seconds from its start; ``whole`` False: stopped at the segment, None)."""
    from vodflow.media.encode.ladder import plan_ladder
    from vodflow.media.encode.renditions import build_multi_encode_command
    from vodflow.media.encode.segmented import discard_after_lead_in, early_grid, listed
    from vodflow.media.options import EncoderSettings

    source = probe_file(src)
    ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    out, lead = work / "bare" / "hls", work / "bare" / "lead"
    for rendition in ladder.renditions:
        (out / rendition.name).mkdir(parents=True, exist_ok=True)
        discard_after_lead_in(str(lead / rendition.name), early_grid(EncoderSettings()).lead)
    args = build_multi_encode_command(str(src), str(out), source, list(ladder.renditions), EncoderSettings(),
                                      lead_root=str(lead))
    firsts = [out / r.name / "seg_00000.ts" for r in ladder.renditions]
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - argument list
    piece = first = None
    while process.poll() is None:
        if piece is None and all(0 in listed(str(lead / r.name)) for r in ladder.renditions):
            piece = time.monotonic() - started
        if first is None and all(path.exists() for path in firsts):
            first = time.monotonic() - started
            if not whole:
                process.kill()
        time.sleep(0.02)
    ended = time.monotonic() - started if whole else None
    shutil.rmtree(work / "bare", ignore_errors=True)
    return (piece if piece is not None else float("nan")), (first if first is not None else float("nan")), ended


def stack_runs(args: argparse.Namespace, work: Path, src: Path) -> None:
    s3_server = LocalS3(work).start(buckets=["vodflow"])
    started = (celery_bench_stack(work, s3_server.endpoint, "playable") if args.executor == "celery"
               else embedded_bench_stack(work, s3_server.endpoint))
    try:
        with started as (stack, catalog_url):
            catalog, s3 = Catalog(make_engine(catalog_url)), s3_client(s3_server.endpoint)
            warm = work / "warmup.mp4"  # a first run pays the workers' imports and the scheduler's first loops
            make_sample(str(warm), SampleSpec(640, 360, 2.0, "30", audio=True))
            r = timed_run(stack, catalog, s3, warm, False)
            print(f"warm-up (2 s 360p): trigger → playable {_seconds(r, 'flag')} | → ready {_seconds(r, 'ready')}")
            for i in range(args.runs):
                r = timed_run(stack, catalog, s3, src, args.until_playable)
                costs = early_costs(work / "stack", r["run_id"])
                print(f"run {i + 1}: trigger → playable (API flag) {_seconds(r, 'flag')} | hls.js could start "
                      f"{_seconds(r, 'hls')} | trigger → ready {_seconds(r, 'ready')}"
                      + (" (not waited for)" if args.until_playable else ""))
                print("  steps: " + ", ".join(f"{name} {at:.2f}" for name, at in sorted(
                    r["steps"].items(), key=lambda step: step[1])))
                if costs:
                    print(f"  early path: {costs[0]} segment PUTs (instead of the item's own), {costs[1]} lead-in "
                          f"piece PUTs and {costs[2]} playlist PUTs + 1 master (extra), one catalog transaction per "
                          f"segment; {costs[3]:.2f} CPU s in its threads")
    finally:
        s3_server.stop()
    piece, first, total = bare_first_segment(work, src, whole=not args.until_playable)
    print(f"bare ffmpeg, the same command: first lead-in piece of every rendition closed at {piece:.2f} s, first "
          f"6 s segment at {first:.2f} s" + (f", exited at {total:.2f} s" if total is not None else ""))


def _seconds(result: dict, name: str) -> str:
    return f"{result[name]:7.2f} s" if name in result else "    n/a"


def encode_only(args: argparse.Namespace, work: Path, src: Path) -> None:
    """The same whole-video encode with early playback off and on, alternately, in this process."""
    s3_server = LocalS3(work).start(buckets=["vodflow"])
    os.environ.update({
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "bench", "password": "bench-secret",
                                                "extra": {"endpoint_url": s3_server.endpoint,
                                                          "region_name": "us-east-1"}}),
        "AIRFLOW_CONN_VODFLOW_CATALOG": json.dumps({"conn_type": "sqlite", "host": str(work / "catalog.db")}),
        "AIRFLOW__VODFLOW__BUCKET": "vodflow", "AIRFLOW__VODFLOW__SCRATCH_DIR": str(work / "scratch")})
    from dataclasses import replace

    from vodflow import pipeline

    try:
        base = pipeline.Services.load()
        key = f"uploads/bench/{src.name}"
        base.storage.client.upload_file(str(src), "vodflow", key)
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for i in range(args.runs):
            for early in (False, True):
                services = replace(base, settings=replace(base.settings, early_playback=early))
                video_id = f"enc-{i}-{int(early)}-{uuid.uuid4().hex[:6]}"
                job, probed, plan, items = pipeline.prepare({"source": f"s3://vodflow/{key}", "video_id": video_id},
                                                            f"run-{video_id}", lambda step, job: None, services)
                cpu = _cpu()
                started = time.monotonic()
                for item in items:
                    pipeline.transcode(job, probed, plan, item, services)
                results[early].append((time.monotonic() - started, _cpu() - cpu))
                print(f"  encode {i + 1}, early playback {'on ' if early else 'off'}: {results[early][-1][0]:6.2f} s "
                      f"wall, {results[early][-1][1]:6.2f} CPU s")
        for early in (False, True):
            walls, cpus = zip(*results[early], strict=True)
            print(f"early playback {'on ' if early else 'off'}: mean wall {sum(walls) / len(walls):6.2f} s, "
                  f"CPU {sum(cpus) / len(cpus):6.2f} s (this process + its ffmpeg)")
    finally:
        s3_server.stop()


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executor", choices=["celery", "local"], default="local")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--until-playable", action="store_true", help="stop waiting once it is playable")
    parser.add_argument("--encode-only", action="store_true", help="the encode alone, early playback off and on")
    parser.add_argument("--faststart", action="store_true", help="the source's index (moov) before its media")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-playable-"))
    width = args.height * 16 // 9
    src = work / f"clip-{args.height}p30.mp4"
    make_sample(str(src), SampleSpec(width, args.height, args.duration, "30", audio=True))
    if args.faststart:  # the index before the media: a reader over HTTP never seeks to the end
        moved = src.with_suffix(".faststart.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-map", "0",  # noqa: S603
                        "-movflags", "+faststart", str(moved)], check=True)
        moved.replace(src)
    print(f"source: {src.stat().st_size / 1e6:.1f} MB, {args.duration:g} s {args.height}p30 with audio"
          f"{' (faststart)' if args.faststart else ' (index at the end)'}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (a shared machine)")
    try:
        (encode_only if args.encode_only else stack_runs)(args, work, src)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
