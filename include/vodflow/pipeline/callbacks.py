"""The failure callbacks of ``transcode_video``'s tasks: one small object per task, made with what that task's
failure needs, so no callback asks which task it is. Each hands the failure to ``record_failure`` (the one place
a failure reaches the catalog). Airflow calls them with the task's context; nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vodflow.codec import decode, encode
from vodflow.pipeline.auto_captions import captions_failed
from vodflow.pipeline.failures import record_failure
from vodflow.pipeline.publish import discard_unpublished
from vodflow.pipeline.services import Job
from vodflow.pipeline.work import Captions

RUN = "run"  # prepare's XCom of the job, the probed source and the plan, which every later task reads


@dataclass
class PrepareFailed:
    """``prepare``'s callback. ``prepare`` tells it each step as the step starts (``at`` is its ``on_step``), so a
    failure names the step (register, probe, plan) and, once register has made the job, reaches the video. The
    task and its callback run in the same process, so this is that task's own state."""

    step: str = "prepare"
    job: Job | None = None

    def at(self, step: str, job: Job | None) -> None:
        self.step, self.job = step, job

    def __call__(self, context: Mapping[str, Any]) -> None:
        record_failure(encode(self.job) if self.job else None, self.step, None, context.get("exception"),
                       context["ti"].try_number)


@dataclass(frozen=True)
class TaskFailed:
    """A later task's callback: the job is in ``prepare``'s XCom ``run``. ``per_item``: the failed work item's
    renditions fail too (a mapped task's name is its item's label); ``discard``: the last task removes the version
    it left half published, since nothing after it would."""

    step: str
    per_item: bool = False
    discard: bool = False

    def __call__(self, context: Mapping[str, Any]) -> None:
        ti = context["ti"]
        job = (ti.xcom_pull(task_ids="prepare", key=RUN) or {}).get("job")
        if self.per_item and ti.rendered_map_index == Captions().label:  # optional: the video goes on without
            captions_failed(job, context.get("exception"))
            return
        record_failure(job, self.step, ti.rendered_map_index if self.per_item else None, context.get("exception"),
                       ti.try_number)
        if self.discard and job:
            discard_unpublished(decode(Job, job))
