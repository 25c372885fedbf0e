"""The steps of ``transcode_video`` as plain functions; the DAG file only wires them.

``prepare`` (register → probe → plan) → ``transcode`` (one work item) → ``publish`` (the teardown). Values are
typed inside a task and cross task boundaries as JSON (XCom) through the one codec (``vodflow.codec``); the
``*_dicts`` functions are those boundaries. Bad input raises ``BadInput`` (the DAG's retry policy fails it at
once); anything else is retried. Each task's failure callback (``callbacks``) hands the failure to
``record_failure``: the one place a failure reaches the catalog.
"""

from vodflow.pipeline.callbacks import RUN, PrepareFailed, TaskFailed
from vodflow.pipeline.failures import describe_failure, record_failure
from vodflow.pipeline.prepare import plan_work, prepare, prepare_dicts, probe_source, register
from vodflow.pipeline.publish import WorkItemsFailed, discard_unpublished, publish, publish_dicts
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.transcode import transcode, transcode_dicts

__all__ = ["RUN", "Job", "PrepareFailed", "Services", "TaskFailed", "WorkItemsFailed", "describe_failure",
           "discard_unpublished", "plan_work", "prepare", "prepare_dicts", "probe_source", "publish", "publish_dicts",
           "record_failure", "register", "transcode", "transcode_dicts"]
