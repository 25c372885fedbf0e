"""Each task's failure callback knows its task from how it was made: prepare's names the step that failed and
reaches the video once registered; transcode's fails the item's renditions; publish's removes what it left."""

from __future__ import annotations

from typing import Any

import pytest

from vodflow.pipeline import callbacks
from vodflow.pipeline.services import Job

JOB = Job(video_id="v1", version=2, run_id="r", source_uri="s3://b/uploads/a.mp4", etag="e", size=1, title="a",
          ladder="default")


class FakeTI:
    try_number = 3
    rendered_map_index = "720p 360p"

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        assert (task_ids, key) == ("prepare", "run")
        return {"job": JOB.to_dict(), "probed": {}, "plan": {}}


@pytest.fixture
def recorded(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr(callbacks, "record_failure", lambda *args: calls.append(("failed", *args)))
    monkeypatch.setattr(callbacks, "discard_unpublished", lambda job: calls.append(("discarded", job)))
    return calls


def test_prepare_names_the_step_it_was_in(recorded):
    failed, error = callbacks.PrepareFailed(), ValueError("no")
    failed({"ti": FakeTI(), "exception": error})  # before register: no video to reach
    failed.at("register", None)
    failed.at("probe", JOB)
    failed({"ti": FakeTI(), "exception": error})
    assert recorded == [("failed", None, "prepare", None, error, 3), ("failed", JOB.to_dict(), "probe", None, error, 3)]


def test_later_tasks_read_the_job_from_prepare(recorded):
    error = RuntimeError("worker lost")
    callbacks.TaskFailed("transcode", per_item=True)({"ti": FakeTI(), "exception": error})
    callbacks.TaskFailed("publish", discard=True)({"ti": FakeTI(), "exception": error})
    assert recorded == [("failed", JOB.to_dict(), "transcode", "720p 360p", error, 3),
                        ("failed", JOB.to_dict(), "publish", None, error, 3), ("discarded", JOB)]
