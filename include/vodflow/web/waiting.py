"""Work waiting in Airflow, read from its own metadata DB through the API server's session: what the catalog
cannot know (a queued run has no video row yet; a scheduled task has no worker). The stats and the metrics."""

from __future__ import annotations

import sqlalchemy as sa

from vodflow.dag_ids import TRANSCODE_VIDEO

WAITING_TASK_STATES = ("scheduled", "queued")  # not yet running on a worker


def waiting_tasks(*, dag_id: str | None = None, queue: str | None = None) -> int:
    """Task instances waiting for a worker slot, of ``dag_id`` and/or on Celery queue ``queue``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    query = sa.select(sa.func.count()).select_from(TaskInstance).where(
        TaskInstance.state.in_(WAITING_TASK_STATES))
    if dag_id is not None:
        query = query.where(TaskInstance.dag_id == dag_id)
    if queue is not None:
        query = query.where(TaskInstance.queue == queue)
    with create_session() as session:
        return int(session.scalar(query) or 0)


def waiting_runs(dag_id: str = TRANSCODE_VIDEO) -> int:
    """Runs queued behind the DAG's ``max_active_runs`` (``max_active_videos``)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(DagRun).where(
            DagRun.dag_id == dag_id, DagRun.state == "queued")) or 0)


IN_FLIGHT_RUN_STATES = ("queued", "running")


def runs_in_flight(user_name: str, dag_id: str = TRANSCODE_VIDEO) -> int:
    """``user_name``'s runs of the DAG not finished yet (Airflow's ``triggering_user_name``): what the in-flight
    quota counts, queued runs included (they have no video row yet)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(DagRun).where(
            DagRun.dag_id == dag_id, DagRun.state.in_(IN_FLIGHT_RUN_STATES),
            DagRun.triggering_user_name == user_name)) or 0)
