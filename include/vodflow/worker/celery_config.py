"""Celery configuration for vodflow's workers: Airflow's defaults, plus a warm start for every task.

Each Airflow task on a Celery worker runs in a process forked (not exec'd) from the worker's pool. Whatever the
worker's main process has loaded before it forks its pool, every task inherits for free. Measured per task
process without it (bench/e2e.py, py-spy and cProfile): Airflow loading the plugins folder for its listener
manager, i.e. vodflow's FastAPI plugin with FastAPI, cadwyn and flask, 0.4 CPU s; botocore's S3 model and the
S3 and Postgres hooks, 0.3 CPU s. Done once here, each task starts its own code about 0.5 s sooner. Each S3
client a task makes comes from a new botocore session that parsed S3's model again (0.1–0.17 CPU s a client,
several a task): the sessions now share one loader, filled here (``storage.share_botocore_models``). The ORM
models, the DAG file's decorators and the hostname callable are imported here too. It also makes the task
supervisor wake when its task process exits (``vodflow.worker.exit_wakeup``).
Set ``[celery] celery_config_options = vodflow.worker.celery_config.CELERY_CONFIG``.
"""

from __future__ import annotations

import logging

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

log = logging.getLogger(__name__)


def _warm_up() -> None:
    try:
        # What the task runner parses the DAG file with, and the DAG file's @dag/@task (loaded lazily).
        import airflow.dag_processing.dagbag
        import airflow.sdk.definitions.decorators
        import airflow.sdk.definitions.retry_policy  # noqa: F401
        import boto3
        import requests  # noqa: F401 - imported for its side effect: loaded once, shared by forks
        from airflow.configuration import conf
        from airflow.models import import_all_models
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
        from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401
        from airflow.sdk.listener import get_listener_manager

        import vodflow.pipeline  # noqa: F401
        from vodflow.storage import share_botocore_models
        from vodflow.worker import exit_wakeup

        get_listener_manager()  # loads the plugins (cached): the task runner asks for it in every task
        import_all_models()  # the ORM models a task's first database-backed call would import
        conf.getimport("core", "hostname_callable")  # imported by every task's start-up otherwise
        share_botocore_models()  # then the S3 model parsed here serves every client of every task
        boto3.session.Session().client("s3", region_name="us-east-1")  # loads the S3 model; sends nothing
        exit_wakeup.install()  # a slot is free the moment its task ends, with heartbeats at Airflow's 5 s
    except Exception:  # a warm start is an optimisation: never stop a worker over it
        log.warning("vodflow warm-up skipped", exc_info=True)


_warm_up()
CELERY_CONFIG = dict(DEFAULT_CELERY_CONFIG)
# Renditions and chunks are long tasks: a worker must not reserve a task it cannot start yet while another
# worker sits idle (Redis brokers; Celery >= 5.6).
CELERY_CONFIG["worker_disable_prefetch"] = True
