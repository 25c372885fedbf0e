"""The tail both watcher DAGs share (``watch_uploads``, ``watch_upload_events``): the runs their ``claim`` task
returns → ``start_transcode`` (one mapped trigger per claim) → ``mark_started`` (the claims recorded as started).

A claim's run id is fixed by the object (``upload__<video_id>``), so a second start of the same claim — a retry,
the other watcher, an app that got there first — finds the run existing and is a skipped trigger, not an error;
the claim is still marked. A claim left unmarked (the DAG run died between the two) is started again by the
next poll, and that start is the same no-op.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import XComArg, task

from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.triggers import watch


def start_runs(runs: XComArg, mark_trigger_rule: str) -> XComArg:
    """Add the tail to the DAG being defined, after ``runs`` (``[{"trigger_run_id", "conf"}]``); returns the
    ``mark_started`` task's output. ``mark_trigger_rule`` is the DAG's: which upstream states still mean the
    claims were handled (a skipped trigger always does)."""
    started = TriggerDagRunOperator.partial(
        task_id="start_transcode", trigger_dag_id=TRANSCODE_VIDEO, skip_when_already_exists=True,
        map_index_template="{{ task.trigger_run_id }}",
    ).expand_kwargs(runs)

    @task(trigger_rule=mark_trigger_rule)
    def mark_started(runs: list[dict[str, Any]]) -> None:
        watch.mark_started(run["trigger_run_id"] for run in runs)

    marked = mark_started(runs)
    started >> marked
    return marked
