"""A run's priority (conf ``priority``: high, normal, low) as Airflow's ``priority_weight`` on its task instances.

Why a cluster policy: a task's ``priority_weight`` is fixed when the DAG is parsed, and a mapped ``transcode``
item's task instances are created by the scheduler, so no task of the run can set it (a weight written into the
metadata DB by ``prepare`` would race the scheduler). Airflow 3.3 calls ``task_instance_mutation_hook(ti,
dag_run)`` wherever it creates or refreshes a task instance (run creation, mapped expansion), with the run, so the
hook can set the weight from ``dag_run.conf``: the supported way to route a task on a run's conf. It is loaded from
``airflow_local_settings`` (``plugins/airflow_local_settings.py``: the plugins folder is on ``sys.path``).

Ordering happens only where the scheduler holds task instances back: it queues them by ``-priority_weight`` then
the run's date, within pool and parallelism limits; once sent to Celery they are first in, first out. So
``transcode`` runs in the pool ``transcode`` sized to the transcode workers' slots (the stacks create it): every
item waits *in the scheduler* for a slot, and the next free slot goes to the highest weight.

Starvation: the weights are bounded (absolute, no upstream sum) and a low item runs whenever no higher one waits.
A steady stream of higher work could still hold it, but only among the runs Airflow has started: runs beyond
``max_active_videos`` wait as queued runs and are started first come, first served, whatever their priority, so
at most ``max_active_videos - 1`` runs can go ahead of a started low one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

HIGH, NORMAL, LOW = "high", "normal", "low"
PRIORITIES = (HIGH, NORMAL, LOW)
WEIGHTS = {HIGH: 100, NORMAL: 10, LOW: 1}
TRANSCODE_POOL = "transcode"


def parse_by_user(text: str) -> dict[str, str]:
    """The ``priority_by_user`` setting, JSON ``{"user": "high"}``; entries naming no priority are dropped (logged):
    the scheduler calls this, and a typo in a setting must never stop it."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        log.warning("priority_by_user is not JSON; ignored")
        return {}
    if not isinstance(raw, dict):
        log.warning("priority_by_user is not a JSON object; ignored")
        return {}
    kept = {str(user): value for user, value in raw.items() if value in PRIORITIES}
    if len(kept) != len(raw):
        log.warning("priority_by_user: entries not one of %s ignored", ", ".join(PRIORITIES))
    return kept


def run_priority(conf: Mapping[str, Any] | None, user: str | None, by_user: Mapping[str, str]) -> str:
    """The conf's ``priority``, else the triggering user's default, else normal."""
    asked = (conf or {}).get("priority")
    if asked in PRIORITIES:
        return asked
    return by_user.get(user or "", NORMAL)


def weight(priority: str | None) -> int:
    return WEIGHTS.get(priority or NORMAL, WEIGHTS[NORMAL])


def _settings_by_user() -> dict[str, str]:
    from vodflow.settings import load_settings

    return parse_by_user(load_settings().priority_by_user)


def _loaded_run(task_instance: Any) -> Any:
    """The TI's run if the ORM already holds it (no query: the hook must not touch the session)."""
    try:
        import sqlalchemy as sa

        loaded = sa.inspect(task_instance).attrs.dag_run.loaded_value
    except Exception:  # not mapped, or no such relationship
        return None
    return None if loaded is sa.orm.base.NO_VALUE else loaded


def task_instance_mutation_hook(task_instance: Any, dag_run: Any) -> None:
    """Airflow's cluster policy: a ``transcode_video`` task instance's weight from its run's priority. Never raises
    (it runs inside the scheduler's loop)."""
    from vodflow.dag_ids import TRANSCODE_VIDEO

    try:
        if getattr(task_instance, "dag_id", None) != TRANSCODE_VIDEO:
            return
        run = dag_run if dag_run is not None else _loaded_run(task_instance)
        if run is None:
            return  # refreshed before it is bound to a run: the weight stored with the instance stands
        priority = run_priority(getattr(run, "conf", None), getattr(run, "triggering_user_name", None),
                                _settings_by_user())
        task_instance.priority_weight = WEIGHTS[priority]
    except Exception:
        log.exception("priority: could not weigh %s", getattr(task_instance, "task_id", "?"))
