"""Early playback of a chunked run: REST trigger → the video playable (its early tree lists the first segment of
every track), → ready, on the embedded stack with a given number of transcode slots ("workers"). Asserts nothing.

    .venv/bin/python bench/early_chunks.py                                 # 120 s 1080p30, 30 s chunks, 2 slots
    .venv/bin/python bench/early_chunks.py --duration 600 --until-playable # the issue's 10-minute source

The source is a 60 s sample (or shorter) repeated by stream copy to ``--duration``: a 10-minute 1080p file in
seconds rather than minutes of encoding.

A warm-up run (a 2 s clip, unchunked) first, so the workers' imports are not counted. Times are the catalog's:
``playable_at`` and the poll that saw ``ready``, against the time the trigger request was sent.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import DAG, _started, iso_seconds, s3_client

from vodflow.catalog import Catalog, make_engine
from vodflow.devtools.devstack import AirflowStack, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample


def run(stack: AirflowStack, catalog: Catalog, s3, src: Path, conf: dict, until_playable: bool = False) -> dict:
    key = f"sources/bench-{uuid.uuid4().hex[:6]}/{src.name}"  # not under watch_prefix: no second run
    with open(src, "rb") as body:  # one PUT: moto's multipart complete has answered 500 while the stack boots
        s3.put_object(Bucket="vodflow", Key=key, Body=body)
    client = stack.client()
    run_id = f"bench-early-{uuid.uuid4().hex[:8]}"
    started = time.time()
    client.trigger(DAG, {"source": f"s3://vodflow/{key}", **conf}, run_id=run_id, attempts=4)
    found: dict[str, float] = {}
    video_id = None
    while "ready" not in found and time.time() - started < 3600:
        video_id = video_id or catalog_video_id(catalog, run_id)
        video = catalog.get_video(video_id) if video_id else None
        if video and video.get("playable_at") and "playable" not in found:
            found["playable"] = video["playable_at"].timestamp() - started
            found["playable_seen"] = time.time() - started
        if until_playable and "playable" in found:
            break
        if video and video["status"] in ("ready", "failed"):
            found["ready"] = time.time() - started
            found["status"] = video["status"]
        time.sleep(0.1)
    for ti in client.task_instances(DAG, run_id):  # where the time went: each task's start, against the trigger
        label = f"{ti['task_id']}[{ti.get('rendered_map_index') or ti.get('map_index')}]"
        if ti.get("start_date"):
            found[f"{label} started"] = iso_seconds(ti["start_date"]) - started
        if ti.get("end_date"):
            found[f"{label} ended"] = iso_seconds(ti["end_date"]) - started
    return found


def catalog_video_id(catalog: Catalog, run_id: str) -> str | None:
    import sqlalchemy as sa

    from vodflow.catalog import videos

    with catalog.engine.connect() as conn:
        return conn.execute(sa.select(videos.c.id).where(videos.c.dag_run_id == run_id)).scalar()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--chunk", type=float, default=30.0, help="chunk_seconds")
    parser.add_argument("--slots", type=int, default=2, help="transcode tasks at once")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--until-playable", action="store_true", help="stop each run once it is playable")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-bench-early-"))
    width = args.height * 16 // 9
    src = work / f"clip-{args.height}p.mp4"
    made = time.monotonic()
    piece = work / "piece.mp4"
    make_sample(str(piece), SampleSpec(width, args.height, min(60.0, args.duration), "30", audio=True))
    repeats = max(1, round(args.duration / min(60.0, args.duration)))
    (work / "list.txt").write_text("".join(f"file '{piece}'\n" for _ in range(repeats)))
    subprocess.run(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(work / "list.txt"),  # noqa: S603
                    "-c", "copy", "-movflags", "+faststart", str(src)], check=True)
    warm = work / "warmup.mp4"
    make_sample(str(warm), SampleSpec(640, 360, 2.0, "30", audio=True))
    print(f"source: {src.stat().st_size / 1e6:.1f} MB, {args.duration:g} s {args.height}p30 with audio "
          f"(made in {time.monotonic() - made:.0f} s); chunks of {args.chunk:g} s; {args.slots} transcode slots")
    s3 = LocalS3(work).start(buckets=["vodflow"])
    stack = AirflowStack(work / "stack", "embedded.env", {"S3_ENDPOINT": s3.endpoint,
                                                          "TRANSCODE_SLOTS": str(args.slots)})
    try:
        _started(stack)
        catalog = Catalog(make_engine(f"sqlite:///{work / 'stack' / 'catalog.db'}"))
        client = s3_client(s3.endpoint)
        warmup = run(stack, catalog, client, warm, {})
        print(f"warm-up (2 s, unchunked): trigger → playable {warmup.get('playable', float('nan')):.1f} s, "
              f"→ {warmup.get('status')} {warmup.get('ready', float('nan')):.1f} s")
        for i in range(args.runs):
            found = run(stack, catalog, client, src, {"chunk_seconds": args.chunk}, args.until_playable)
            print(f"run {i + 1}: trigger → playable {found.get('playable', float('nan')):.1f} s (seen by a 0.1 s "
                  f"poll at {found.get('playable_seen', float('nan')):.1f} s), → {found.get('status')} "
                  f"{found.get('ready', float('nan')):.1f} s")
            print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in found.items() if k.endswith(("started", "ended"))))
    finally:
        stack.stop()
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
