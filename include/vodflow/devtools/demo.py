"""`make demo`: the whole pipeline on one machine, as an app would drive it.

Starts a local S3 endpoint and an embedded Airflow (SQLite, LocalExecutor), uploads a video to
``uploads/``, triggers ``transcode_video`` over the REST API, follows the catalog until the video is ready
or failed, copies the published version into ``demo-output/<video_id>/`` and stops everything it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from vodflow import layout
from vodflow.catalog import READY, Catalog, catalog_for_connection
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.devtools.client import AirflowClient
from vodflow.devtools.conformance import check_tree
from vodflow.devtools.devstack import REPO, AirflowStack, LocalS3
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.settings import load_settings
from vodflow.storage import Storage

BAR_WIDTH = 20


def _bar(progress: float) -> str:
    filled = round(BAR_WIDTH * progress / 100)
    return "#" * filled + "." * (BAR_WIDTH - filled)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_demo(video: str | None, output_root: Path, state_dir: Path) -> int:
    # Explicit handlers: a process started in the background may inherit SIGINT as "ignored".
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    started = time.monotonic()
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    s3 = LocalS3(state_dir)
    stack: AirflowStack | None = None
    try:
        print(f"[demo] local S3 endpoint on {s3.endpoint}", flush=True)
        s3.start(buckets=["vodflow"])
        stack = AirflowStack(state_dir, "embedded.env", {"S3_ENDPOINT": s3.endpoint})
        os.environ.update(stack.config)  # this process talks to S3 and the catalog through the same connections
        print("[demo] preparing Airflow (SQLite metadata DB, LocalExecutor) and the catalog", flush=True)
        stack.prepare()
        stack.start()
        print(f"[demo] Airflow API at {stack.base_url} (user admin / admin)", flush=True)

        source_path = Path(video) if video else _sample(state_dir)
        key = f"uploads/{source_path.name}"
        storage = Storage(load_settings().aws_conn_id, "vodflow")
        source = storage.upload_source(str(source_path), key)
        print(f"[demo] uploaded {source_path} -> {source}", flush=True)

        client = stack.client()
        client.wait_for_dag(TRANSCODE_VIDEO, timeout=120)
        trigger_at = time.monotonic()
        run_id = client.trigger(TRANSCODE_VIDEO, {"source": source, "title": source_path.stem})
        print(f"[demo] triggered {TRANSCODE_VIDEO} run {run_id} over the REST API", flush=True)
        run = _follow(stack, client, run_id)
        elapsed = time.monotonic() - trigger_at
        return _report(run, run_id, elapsed, output_root, storage, time.monotonic() - started)
    except KeyboardInterrupt:
        print("\n[demo] interrupted; stopping everything", flush=True)
        return 130
    finally:
        if stack is not None:
            stack.stop()
        s3.stop()


def _sample(state_dir: Path) -> Path:
    path = state_dir / "sample-1080p.mp4"
    print("[demo] generating a 20 s 1080p30 sample with audio", flush=True)
    make_sample(str(path), SampleSpec(width=1920, height=1080, duration=20, fps="30", audio=True))
    return path


def _catalog() -> Catalog:
    return catalog_for_connection(load_settings().catalog_conn_id)


def _video_of_run(catalog: Catalog, run_id: str) -> dict[str, Any] | None:
    """The video the run builds, with its latest version's renditions; None until the run has registered it."""
    found, _ = catalog.list_videos(run_id=run_id, limit=1)
    return found[0] if found else None


def _follow(stack: AirflowStack, client: AirflowClient, run_id: str) -> dict:
    catalog = _catalog()
    last_line = ""

    def show(run: dict) -> None:
        nonlocal last_line
        stack.check_alive()
        video = _video_of_run(catalog, run_id)
        line = f"run {run['state']}"
        if video:
            line = f"{video['status']:<12}"
            for r in video["renditions"]:
                line += f" {r['name']} [{_bar(r['progress'])}] {r['progress']:3.0f}%"
        if line != last_line:
            print(f"[demo] {line}", flush=True)
            last_line = line

    return client.wait_for_run(TRANSCODE_VIDEO, run_id, timeout=1800, poll=1.0, on_poll=show)


def _report(run: dict, run_id: str, elapsed: float, output_root: Path, storage: Storage, total: float) -> int:
    catalog = _catalog()
    video = _video_of_run(catalog, run_id)
    if run["state"] != "success" or not video or video["status"] != READY:
        print(f"[demo] FAILED: run {run['state']}", flush=True)
        if video:
            print(f"[demo] video {video['id']}: {video['status']} ({video['error_code']}): {video['error_message']}")
        return 1
    version = video["current_version"]
    print(f"\nVideo {video['id']} — {video['title']!r}: {video['status']}, version {version}")
    print(f"  source     {video['width']}x{video['height']} {video['fps']} fps, {video['duration']:.1f} s, "
          f"{'with' if video['has_audio'] else 'no'} audio ({video['video_codec']})")
    print(f"  {'rendition':<10} {'size':>10} {'BANDWIDTH':>10} {'AVERAGE':>10}  {'CODECS':<24} {'bytes':>10}")
    for r in catalog.get_renditions(video["id"], version):
        print(f"  {r['name']:<10} {r['width']:>5}x{r['height']:<4} {r['bandwidth']:>10} {r['average_bandwidth']:>10}"
              f"  {r['codecs']:<24} {r['bytes']:>10}")
    target = output_root / video["id"]
    shutil.rmtree(target, ignore_errors=True)
    files = storage.download_tree(layout.version_prefix(video["id"], version), str(target))
    report = check_tree(target / "hls", expected_duration=video["duration"], expect_audio=video["has_audio"])
    print(f"  HLS checks {report.passed}/{len(report.checks)} passed" + ("" if report.ok else ":"))
    for check in report.failures:
        print(f"    FAIL {check.name}: {check.detail}")
    print(f"  trigger → ready {elapsed:.1f} s; whole demo {total:.1f} s; {len(files)} files")
    print(f"  master playlist: {target / 'hls' / 'master.m3u8'}")
    print(target.resolve(), flush=True)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vodflow demo", description=__doc__)
    parser.add_argument("--video", help="a video file to use instead of the generated 1080p sample")
    parser.add_argument("--output", default=str(REPO / "demo-output"))
    parser.add_argument("--state", default=str(REPO / ".demo"))
    args = parser.parse_args(argv)
    return run_demo(args.video or None, Path(args.output), Path(args.state))


if __name__ == "__main__":
    sys.exit(main())
