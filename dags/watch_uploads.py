"""
### watch_uploads — one `transcode_video` run per new object under `uploads/`, exactly once

`wait_for_uploads` (deferrable: it polls S3 from the triggerer, holding no worker slot) → `claim` (records
each new (bucket, key, etag) in the catalog; the first insert wins) → `start_transcode` (one mapped trigger
per claim, run id `upload__<video_id>`, so a second start is a no-op) → `mark_started`.
The DAG runs continuously, one run at a time. Settings: `[vodflow] watch_prefix`, `watch_poll_seconds`,
`watch_settle_seconds`, `watch_lookback_seconds`, `watch_run_seconds`.
The logic lives in `include/vodflow/triggers/watch.py`; the start → mark tail, shared with
`watch_upload_events`, in `triggers/start_runs.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from vodflow.settings import load_settings
from vodflow.triggers import watch
from vodflow.triggers.start_runs import start_runs


@dag(
    dag_id="watch_uploads",
    schedule="@continuous",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    tags=["vodflow"],
    doc_md=__doc__,
)
def watch_uploads() -> None:
    # A quiet bucket ends the run after a while (skipped, not failed); the next run starts at once.
    waited = watch.WaitForUploadsSensor(task_id="wait_for_uploads", timeout=load_settings().watch_run_seconds,
                                        soft_fail=True)

    @task
    def claim() -> list[dict[str, Any]]:
        return watch.claim_new_uploads()

    runs = claim()
    waited >> runs
    # A run that already existed is a skipped trigger, and that is fine; a quiet spell (skipped sensor) is not work.
    start_runs(runs, mark_trigger_rule="none_failed_min_one_success")


watch_uploads()
