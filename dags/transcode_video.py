"""
### transcode_video — one run per video: S3 source in, adaptive HLS out, catalog written

`prepare (register → probe → plan) → transcode (mapped over work items, queue "transcode") → publish`. A work
item is every rendition of the video and its poster and thumbnails from one decode; a source longer than
`chunk_threshold_seconds` is encoded in chunks instead (one item per chunk, every rendition decoded once, plus
one for the audio), which `publish` joins into continuous renditions once every chunk is done. `publish` is the
teardown of `prepare`: it runs once every work item is done, whatever happened, and when one failed it removes
what was uploaded instead of publishing (a cleanup task of its own would cost every video a task). A per-title
run (conf `adaptive`) decides its ladder inside its `transcode` item(s), with a VMAF probe on the transcode
worker before encoding: still three tasks, nothing heavy on `default`.

Trigger with conf `{"source": "s3://bucket/uploads/clip.mp4"}` (optional `video_id`, `title`, `ladder`,
`adaptive`, `chunk_seconds`, `outputs`, `mp4_renditions`, `captions`, `callback_url`). A bad conf, or a key
the request does not know, is refused when the run is triggered. Bad input
(not a video, truncated, too long, …) fails at once with its reason in the catalog and the UI; transient faults
are retried with backoff.
The logic lives in `include/vodflow`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from vodflow import pipeline
from vodflow.catalog import AlreadyActive
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.errors import Permanent
from vodflow.request import DEFAULTS, param_schemas
from vodflow.settings import load_settings

TRANSCODE_QUEUE = "transcode"
# The source allowlist is part of the conf schema, so the REST API refuses another bucket with a 400.
_settings = load_settings()
SCHEMAS = param_schemas(_settings.allowed_source_buckets, _settings.source_prefixes)


def _record_failure(context: dict[str, Any]) -> None:
    """Failure callback of every task: the video goes `failed` with the reason, named by the step that failed."""
    ti = context["ti"]
    if ti.task_id == "prepare":  # the job is known once register has run; `prepare` says which step it is in
        job, step = context.get("vodflow_job"), context.get("vodflow_step", ti.task_id)
    else:
        job, step = ti.xcom_pull(task_ids="prepare", key="job"), ti.task_id
    item = ti.rendered_map_index if ti.task_id == "transcode" else None
    pipeline.record_failure(job, step, item, context.get("exception"), ti.try_number)
    if ti.task_id == "publish" and job:  # the last task: nothing after it removes a half-published version
        pipeline.discard_unpublished(pipeline.Job.from_dict(job))


DEFAULT_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    # Bad input (or a refused request) can never succeed: no retry is spent on it. The type decides (errors.py).
    "retry_policy": ExceptionRetryPolicy(
        rules=[RetryRule(exception=Permanent, action=RetryAction.FAIL, reason="bad input; retrying cannot help")]
    ),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": _record_failure,
}


@dag(
    dag_id=TRANSCODE_VIDEO,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
            for name, schema in SCHEMAS.items()},
    max_active_runs=_settings.max_active_videos,
    tags=["vodflow"],
    doc_md=__doc__,
)
def transcode_video() -> None:
    @task
    def prepare() -> list[dict[str, Any]]:
        """The work items (what `transcode` maps over); the job, the probed source and the plan go out as XComs."""
        context = get_current_context()

        def on_step(step: str, job: pipeline.Job | None) -> None:
            context.update(vodflow_step=step, vodflow_job=job.to_dict() if job else None)  # type: ignore[typeddict-unknown-key]

        try:
            job, probed, plan, items = pipeline.prepare(dict(context["params"]), context["run_id"], on_step)
        except AlreadyActive as busy:  # the same video twice at once: the first run wins, this one stands down
            raise AirflowSkipException(str(busy)) from None
        for key, value in (("job", job), ("probed", probed), ("plan", plan)):
            context["ti"].xcom_push(key, value.to_dict())
        return [item.to_dict() for item in items]

    # One work item: the whole video ("1080p 720p 480p 360p"), or for a long source a chunk of it ("chunk 03") or
    # the audio. The encode's own timeout is sized from the source duration; this is only the backstop. A cap on
    # the items of one run also spares the scheduler its deadlock probe of every open run on every loop (Airflow
    # skips it for runs with such a cap; this DAG cannot deadlock: publish is a teardown and runs after anything).
    @task(queue=TRANSCODE_QUEUE, map_index_template="{{ work_label }}", execution_timeout=timedelta(hours=12),
          max_active_tis_per_dagrun=_settings.max_items_per_video)
    def transcode(job: dict[str, Any], probed: dict[str, Any], plan: dict[str, Any],
                  item: dict[str, Any]) -> dict[str, Any]:
        get_current_context()["work_label"] = item["label"]
        return pipeline.transcode_dicts(job, probed, plan, item)

    @task
    def publish(job: dict[str, Any], plan: dict[str, Any], items: list[dict[str, Any]],
                results: list[dict[str, Any]]) -> dict[str, Any]:
        """A failed work item left no result: then nothing is published, and the run fails with this task."""
        try:
            return pipeline.publish_dicts(job, plan, list(items), list(results))
        except pipeline.WorkItemsFailed as failed:
            raise AirflowFailException(failed.message) from None

    work = prepare()
    job, plan = work["job"], work["plan"]
    encoded = transcode.partial(job=job, probed=work["probed"], plan=plan).expand(item=work)
    # A teardown whose failure fails the run: it is the run's outcome, publish or not.
    publish(job, plan, work, encoded).as_teardown(setups=work, on_failure_fail_dagrun=True)


transcode_video()
