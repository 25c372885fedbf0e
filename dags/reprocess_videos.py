"""
### reprocess_videos — re-transcode the uploads of each day, and videos on an older ladder

Daily. A run's data interval selects the videos whose source was uploaded in it, so
`airflow backfill create --dag-id reprocess_videos --from-date 2026-11-01 --to-date 2026-11-02` re-transcodes
exactly those days. Scheduled and manual runs also re-encode (`[vodflow] reprocess_outdated_per_run` at a time)
published videos whose ladder version is older than the current one. Each video gets a new version; the old one
stays readable until the switch. The logic lives in `include/vodflow/reprocess.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from vodflow import reprocess


@dag(
    dag_id="reprocess_videos",
    # Data intervals, not trigger times: the run for 2026-11-01 covers [2026-11-01, 2026-11-02).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["vodflow"],
    doc_md=__doc__,
)
def reprocess_videos() -> None:
    @task
    def select() -> list[dict[str, Any]]:
        context = get_current_context()
        dag_run = context["dag_run"]
        return reprocess.select_runs(context["data_interval_start"], context["data_interval_end"],
                                     dag_run.run_id, include_outdated=dag_run.run_type != "backfill")

    TriggerDagRunOperator.partial(
        task_id="reprocess", trigger_dag_id="transcode_video", skip_when_already_exists=True,
        map_index_template="{{ task.trigger_run_id }}",
    ).expand_kwargs(select())


reprocess_videos()
