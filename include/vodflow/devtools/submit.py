"""`vodflow submit FILE`: upload a video, start its transcode over Airflow's REST API, show progress.

Upload goes through a presigned PUT URL from the vodflow API (``--via presigned``, what apps do: the video
never passes through Airflow; a large file as a multipart upload that a second ``submit`` resumes)
or straight to the bucket with the Airflow connection in this environment
(``--via s3``, for operators). Exit status: 0 ready, 1 failed, 2 usage or connection problems.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from vodflow.catalog import FAILED, READY
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.devtools.client import AirflowClient, ApiError
from vodflow.devtools.upload_client import upload
from vodflow.triggers.uploads import new_upload_key, sanitize_filename

STATE_DIR = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "vodflow" / "uploads"


def upload_presigned(client: AirflowClient, path: Path, multipart: bool | None = None,
                     state_dir: Path = STATE_DIR) -> str:
    """Through the vodflow API: a presigned PUT, or a multipart upload (large files) that resumes where an
    interrupted ``submit`` of the same file stopped. Progress on stderr."""
    def progress(sent: int, total: int) -> None:
        print(f"\ruploading {_bar(sent / max(total, 1))} {sent / 2**20:,.0f}/{total / 2**20:,.0f} MiB",
              end="", file=sys.stderr, flush=True)

    result = upload(client, path, state_dir, multipart=multipart, progress=progress)
    print(" (resumed)" if result.resumed else "", file=sys.stderr)
    return result.source


def upload_direct(path: Path, bucket: str, conn_id: str) -> str:
    from vodflow.storage import Storage

    return Storage(conn_id, bucket).upload_source(str(path), new_upload_key(sanitize_filename(path.name)))


def _bar(fraction: float, width: int = 30) -> str:
    filled = round(width * fraction)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def describe(client: AirflowClient, run_id: str) -> tuple[str, float, str]:
    """(run state, fraction done, detail) from the video API when the plugin is there, else from task states."""
    try:
        video = client.request("GET", "/vodflow/api/videos", params={"run_id": run_id})["videos"]
    except (ApiError, ValueError, KeyError, TypeError):  # no vodflow plugin: the UI answers with HTML
        video = []
    if video:
        v = video[0]
        detail = " ".join(f"{r['name']} {r['progress']:.0f}%" for r in v.get("renditions", []))
        return v["status"], v.get("progress", 0) / 100, detail
    tasks = client.task_instances(TRANSCODE_VIDEO, run_id)
    done = sum(t["state"] in ("success", "skipped") for t in tasks)
    detail = " ".join(f"{t['rendered_map_index']}:{t['state'] or 'waiting'}" for t in tasks
                      if t["task_id"] == "transcode")
    return client.run(TRANSCODE_VIDEO, run_id)["state"], done / max(len(tasks), 1), detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vodflow submit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--api", default=os.environ.get("VODFLOW_API", "http://127.0.0.1:8080"),
                        help="Airflow base URL (env VODFLOW_API)")
    parser.add_argument("--user", default=os.environ.get("VODFLOW_USER", "admin"))
    parser.add_argument("--password", default=os.environ.get("VODFLOW_PASSWORD"),
                        help="(env VODFLOW_PASSWORD)")
    parser.add_argument("--via", choices=["presigned", "s3"], default="presigned")
    parser.add_argument("--multipart", action=argparse.BooleanOptionalAction, default=None,
                        help="multipart upload (default: the server decides by size; resumes an interrupted one)")
    parser.add_argument("--bucket", default=os.environ.get("AIRFLOW__VODFLOW__BUCKET", "vodflow"))
    parser.add_argument("--aws-conn-id", default="aws_default")
    parser.add_argument("--title")
    parser.add_argument("--ladder", help="ladder name, or rungs separated by commas (e.g. 720p,360p)")
    parser.add_argument("--video-id")
    parser.add_argument("--no-wait", action="store_true", help="print the run id and return")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file")
    if not args.password:
        parser.error("a password is needed (--password or VODFLOW_PASSWORD)")

    client = AirflowClient(args.api.rstrip("/"), args.user, args.password)
    try:
        source = (upload_presigned(client, args.file, args.multipart) if args.via == "presigned"
                  else upload_direct(args.file, args.bucket, args.aws_conn_id))
        print(f"uploaded {args.file.name} -> {source}", flush=True)
        conf: dict[str, Any] = {"source": source, "title": args.title or args.file.stem}
        if args.ladder:
            conf["ladder"] = args.ladder.split(",") if "," in args.ladder or args.ladder[0].isdigit() else args.ladder
        if args.video_id:
            conf["video_id"] = args.video_id
        run_id = client.trigger(TRANSCODE_VIDEO, conf)
    except (ApiError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run {run_id}", flush=True)
    if args.no_wait:
        return 0
    tty = sys.stdout.isatty()
    last = ""
    while True:
        state, fraction, detail = describe(client, run_id)
        line = f"{state:<12} {_bar(fraction)} {fraction * 100:3.0f}%  {detail}"
        if line != last:
            print(("\r" + line.ljust(100)) if tty else line, end="" if tty else "\n", flush=True)
            last = line
        if state in (READY, "success", FAILED):  # a video's status (plugin API) or a run's state (REST API)
            break
        time.sleep(1.0)
    if tty:
        print()
    if state in (READY, "success"):
        print("ready")
        return 0
    print("failed", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
