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
`adaptive`, `chunk_seconds`, `priority`, `outputs`, `mp4_renditions`, `captions`, `auto_captions`,
`callback_url`). A bad conf, or a key the request does not know, is refused when the run is triggered. Bad input
(not a video, truncated, too long, …) fails at once with its reason in the catalog and the UI; transient faults
are retried with backoff.
The logic lives in `include/vodflow`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule, XComArg, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from vodflow import pipeline
from vodflow.catalog import AlreadyActive
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.errors import Permanent
from vodflow.priority import TRANSCODE_POOL, parse_by_user, run_priority
from vodflow.request import DEFAULTS, param_schemas
from vodflow.settings import load_settings

TRANSCODE_QUEUE = "transcode"
# The DAG's shape needs three settings when the file is parsed: the source allowlist (in the conf schema, so the
# REST API refuses another bucket with a 400) and two caps. They come from Airflow's configuration only (no
# connection, Variable or database): cheap and safe at parse time. Tasks load their own settings when they run.
SHAPE = load_settings()
SCHEMAS = param_schemas(SHAPE.allowed_source_buckets, SHAPE.source_prefixes)

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
    # The run's priority sets each task's weight (vodflow.priority's cluster policy): absolute, not summed.
    "weight_rule": "absolute",
}


@dag(
    dag_id=TRANSCODE_VIDEO,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
            for name, schema in SCHEMAS.items()},
    max_active_runs=SHAPE.max_active_videos,
    tags=["vodflow"],
    doc_md=__doc__,
)
def transcode_video() -> None:
    # Each task's failure marks the video `failed`, with the reason, named by the step that failed.
    prepare_failed = pipeline.PrepareFailed()

    @task(on_failure_callback=prepare_failed)
    def prepare() -> list[dict[str, Any]]:
        """The work items (what `transcode` maps over); the job, the probed source and the plan go out together as
        the XCom `run`: one write here and one read per later task, not three."""
        context = get_current_context()
        params = dict(context["params"])
        # The priority the run got (the conf's, else the user's default) is kept with the request: a retry or a
        # reprocess run keeps it even if the user's default changes.
        params["priority"] = run_priority(params, context["dag_run"].triggering_user_name,
                                          parse_by_user(load_settings().priority_by_user))
        try:
            values, items = pipeline.prepare_dicts(params, context["run_id"], prepare_failed.at)
        except AlreadyActive as busy:  # the same video twice at once: the first run wins, this one stands down
            raise AirflowSkipException(str(busy)) from None
        context["ti"].xcom_push(pipeline.RUN, values)
        return items

    # One work item: the whole video ("1080p 720p 480p 360p"), or for a long source a chunk of it ("chunk 03") or
    # the audio. The encode's own timeout is sized from the source duration; this is only the backstop. A cap on
    # the items of one run also spares the scheduler its deadlock probe of every open run on every loop (Airflow
    # skips it for runs with such a cap; this DAG cannot deadlock: publish is a teardown and runs after anything).
    # In the pool `transcode` (sized to the transcode workers' slots): items wait in the scheduler, which hands the
    # next free slot to the highest priority (vodflow.priority); on the broker they would be first in, first out.
    # multiple_outputs=False (here and on publish): a dict return would otherwise also be pushed key by key, 13 XCom
    # writes a video (an API call and a database row each) that nothing read.
    @task(queue=TRANSCODE_QUEUE, pool=TRANSCODE_POOL, map_index_template="{{ work_label }}", multiple_outputs=False,
          execution_timeout=timedelta(hours=12), max_active_tis_per_dagrun=SHAPE.max_items_per_video,
          on_failure_callback=pipeline.TaskFailed("transcode", per_item=True))
    def transcode(run: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        get_current_context()["work_label"] = item["label"]
        return pipeline.transcode_dicts(run["job"], run["probed"], run["plan"], item)

    # The last task: when it fails, nothing after it removes a half-published version, so its callback does.
    @task(on_failure_callback=pipeline.TaskFailed("publish", discard=True), multiple_outputs=False)
    def publish(run: dict[str, Any], items: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
        """A failed work item left no result: then nothing is published, and the run fails with this task."""
        try:
            return pipeline.publish_dicts(run["job"], run["plan"], list(items), list(results))
        except pipeline.WorkItemsFailed as failed:
            raise AirflowFailException(failed.message) from None

    items = prepare()
    run = XComArg(items.operator, key=pipeline.RUN)
    results = transcode.partial(run=run).expand(item=items)
    # A teardown whose failure fails the run: it is the run's outcome, publish or not.
    publish(run, items, results).as_teardown(setups=items, on_failure_fail_dagrun=True)


transcode_video()
