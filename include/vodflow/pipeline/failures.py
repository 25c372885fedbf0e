"""Where a failure reaches the catalog (once, with a reason a person understands) and the app (the callback)."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from vodflow import errors
from vodflow.errors import BadInput, VodflowError
from vodflow.pipeline.notify import notify
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)


def fail_now(services: Services, job: Job, error: BadInput) -> NoReturn:
    """Record bad input found before the video has a run's failure callback to do it (and tell the app), and stop."""
    if services.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code=error.code,
                             message=error.message):
        notify(services, job)
    raise error


def describe_failure(exception: BaseException | None, step: str, attempts: int) -> tuple[str, str]:
    """(error_code, message) for the catalog: a bad-input reason as is, anything else summarised."""
    if isinstance(exception, BadInput):
        return exception.code, exception.message
    if isinstance(exception, VodflowError):
        return exception.code, f"{step} failed after {attempts} attempt(s): {exception.message}"
    detail = f"{type(exception).__name__}: {exception}" if exception else "the task was stopped"
    return errors.INTERNAL_ERROR, f"{step} failed after {attempts} attempt(s): {detail}"[:2000]


def record_failure(job_data: dict[str, Any] | None, step: str, work_label: str | None,
                   exception: BaseException | None, attempts: int, services: Services | None = None) -> None:
    """The tasks' failure callback: ``step`` is a task, or a step of ``prepare``; ``work_label`` a work item's."""
    if not job_data:
        log.error("%s failed before the video was registered: %s", step, exception)
        return
    services = services or Services.load()
    job = Job.from_dict(job_data)
    code, message = describe_failure(exception, step, attempts)
    log.error("Video %s failed (%s): %s", job.video_id, code, message)
    for name in (work_label or "").split():  # a whole-video item's label is its renditions' names
        services.catalog.rendition_failed(job.video_id, job.version, name, message)
    if services.catalog.fail(video_id=job.video_id, run_id=job.run_id, version=job.version, code=code,
                             message=message):
        notify(services, job)
