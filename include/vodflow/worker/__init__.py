"""Start-up tweaks of the Celery worker process: loaded once by the worker (``[celery] celery_config_options =
vodflow.worker.celery_config.CELERY_CONFIG``) before it forks its pool, never by a task's own code, the API
server or the scheduler. Nothing else in vodflow imports them.
"""
