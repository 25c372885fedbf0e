"""
### transcode_video — one run per video: S3 source in, adaptive HLS out, catalog written

`register → probe → plan → transcode (one mapped task per rendition, queue "transcode") → join → publish`,
with `thumbnails` beside the encodes and `finish` as the teardown that runs whatever happened. A source longer
than `chunk_threshold_seconds` is encoded in chunks instead (one mapped task per chunk, every rendition decoded
once, plus one for the audio), which `join` turns into continuous renditions once every chunk is done.

Trigger with conf `{"source": "s3://bucket/uploads/clip.mp4"}` (optional `video_id`, `title`, `ladder`,
`adaptive`, `chunk_seconds`, `callback_url`). A bad conf is refused when the run is triggered. Bad input (not
a video, truncated, too long, …) fails at once with its reason in the catalog and the UI; transient faults are
retried with backoff.
The logic lives in `include/vodflow`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.exceptions import AirflowSkipException
from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule, dag, get_current_context, task, teardown

from vodflow import pipeline
from vodflow.catalog import AlreadyActive
from vodflow.errors import BadInput
from vodflow.request import DEFAULTS, SCHEMAS

TRANSCODE_QUEUE = "transcode"


def _record_failure(context: dict[str, Any]) -> None:
    """Failure callback of every task: the video goes `failed` with the task's reason."""
    ti = context["ti"]
    job = ti.xcom_pull(task_ids="register") if ti.task_id != "register" else None
    rendition = ti.rendered_map_index if ti.task_id == "transcode" else None
    pipeline.record_failure(job, ti.task_id, rendition, context.get("exception"), ti.try_number)


DEFAULT_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    # Bad input can never succeed: no retry is spent on it.
    "retry_policy": ExceptionRetryPolicy(
        rules=[RetryRule(exception=BadInput, action=RetryAction.FAIL, reason="bad input; retrying cannot help")]
    ),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": _record_failure,
}


@dag(
    dag_id="transcode_video",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
            for name, schema in SCHEMAS.items()},
    max_active_runs=32,
    tags=["vodflow"],
    doc_md=__doc__,
)
def transcode_video() -> None:
    @task
    def register() -> dict[str, Any]:
        context = get_current_context()
        try:
            return pipeline.register(dict(context["params"]), context["run_id"])
        except AlreadyActive as busy:  # the same video twice at once: the first run wins, this one stands down
            raise AirflowSkipException(str(busy)) from None

    @task
    def probe(job: dict[str, Any]) -> dict[str, Any]:
        return pipeline.probe_source(job)

    @task
    def plan(job: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
        return pipeline.plan(job, source)

    # One work item: a rendition ("720p"), or for a long source a chunk of every rendition ("chunk 03") or the
    # audio. The encode's own timeout is sized from the source duration; this is only the backstop.
    @task(queue=TRANSCODE_QUEUE, map_index_template="{{ work_label }}", execution_timeout=timedelta(hours=12))
    def transcode(job: dict[str, Any], source: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        get_current_context()["work_label"] = item["label"]
        return pipeline.transcode(job, source, item)

    @task(queue=TRANSCODE_QUEUE)
    def join(job: dict[str, Any], items: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return pipeline.join(job, items, list(results))

    @task
    def thumbnails(job: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        return pipeline.thumbnails(job, source)

    @task
    def publish(job: dict[str, Any], measured: list[dict[str, Any]], pictures: dict[str, Any]) -> dict[str, Any]:
        return pipeline.publish(job, list(measured), pictures)

    @teardown
    def finish(job: dict[str, Any]) -> None:
        pipeline.finish(job)

    job = register()
    source = probe(job)
    work = plan(job, source)
    encoded = transcode.partial(job=job, source=source).expand(item=work)
    published = publish(job, join(job, work, encoded), thumbnails(job, source))
    published >> finish(job).as_teardown(setups=job)


transcode_video()
