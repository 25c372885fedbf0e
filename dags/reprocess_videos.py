"""
### reprocess_videos — repair what failed or died, re-encode older ladders; a whole range only when asked

Daily. **A scheduled run never re-encodes a `ready` video**: each upload costs one encode. It starts a
`transcode_video` run, with the video's stored request (ladder, adaptive, chunking, callback, title), for

* videos of its interval (and the one before: a video still running at midnight) that never reached `ready`
  for a reason a retry can fix: `failed` with an error that is not bad input (e.g. `internal_error`), or a run
  that died (active, silent for over 2 h; the new run takes over). Bad input is never retried, and a video whose
  last run was already a reprocess run is left for a person: the schedule retries a failure once;
* published videos on an older ladder version, `[vodflow] reprocess_outdated_per_run` at a time.

Param **`mode`**: `repair` (default, the above) or `all` — re-transcode every video of the range that no run
is building (today's ready ones included). Which range:

* scheduled run: its data interval (the run for 2026-11-01 covers [2026-11-01, 2026-11-02));
* manual run **with a logical date**: that run's data interval (for "now": yesterday, UTC);
* manual run **without a logical date** (the Trigger button's default): no range. `repair` sweeps every
  retryable video up to now (the operator's "fix everything broken"); `all` is refused (the run fails at once
  saying so) — it would re-encode the whole library; give a logical date or backfill the dates instead;
* backfill: each day is one run with that day's range, in `repair` unless asked:
  `airflow backfill create --dag-id reprocess_videos --from-date 2026-11-01 --to-date 2026-11-02
  --dag-run-conf '{"mode": "all"}'` re-transcodes exactly those days' uploads. Backfills skip the older-ladder
  batch.

Each video gets a new version; the old one stays playable until the switch. Run ids are deterministic per
(video, reprocess run), so clearing and re-running a reprocess run starts nothing twice. The logic lives in
`include/vodflow/triggers/reprocess.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.triggers import reprocess


@dag(
    dag_id="reprocess_videos",
    # Data intervals, not trigger times: the run for 2026-11-01 covers [2026-11-01, 2026-11-02).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"mode": Param(reprocess.REPAIR, type="string", enum=list(reprocess.MODES), title="Mode",
                          description="repair: only what failed (not bad input) or died, and older ladders. "
                                      "all: every video of the run's range, ready ones too (needs a range: "
                                      "a logical date or a backfill).")},
    tags=["vodflow"],
    doc_md=__doc__,
)
def reprocess_videos() -> None:
    @task
    def select() -> list[dict[str, Any]]:
        context = get_current_context()
        dag_run = context["dag_run"]
        # Airflow 3: a manual run without a logical date has no data interval (the keys are absent).
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        try:
            return reprocess.select_runs(start, end, dag_run.run_id, mode=context["params"]["mode"],
                                         scheduled=dag_run.run_type == "scheduled",
                                         include_outdated=dag_run.run_type != "backfill")
        except reprocess.RangeRequired as refused:  # a retry would be refused the same way
            raise AirflowFailException(str(refused)) from None

    TriggerDagRunOperator.partial(
        task_id="reprocess", trigger_dag_id=TRANSCODE_VIDEO, skip_when_already_exists=True,
        map_index_template="{{ task.trigger_run_id }}",
    ).expand_kwargs(select())


reprocess_videos()
