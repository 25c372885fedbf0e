"""Airflow's cluster policies for vodflow (Airflow imports ``airflow_local_settings`` from ``sys.path``, which holds
the plugins folder): a ``transcode_video`` run's tasks weighted by its ``priority`` (``vodflow.priority``)."""

from vodflow.priority import task_instance_mutation_hook

__all__ = ["task_instance_mutation_hook"]
