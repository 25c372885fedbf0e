"""The conf the upload watcher starts a claim's run with: an app's conf only as the checked trigger wrote it (an
app's claim, naming this claim's object and video, every field valid); anything else is the object alone."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from vodflow.triggers.watch import claim_conf, runs_for_claims

SOURCE = "s3://vodflow/uploads/2026/12/07/ab/clip.mp4"
OWN = {"source": SOURCE, "video_id": "v1"}
ASKED = {"source": SOURCE, "title": "Clip", "callback_url": "https://app.example.com/hook?token=s3cret",
         "ladder": ["360p", "720p"]}


def claim(conf: Any = None, run_id: str = "app__20261207T050000_0123abcd") -> dict[str, Any]:
    return {"bucket": "vodflow", "key": SOURCE.removeprefix("s3://vodflow/"), "video_id": "v1", "dag_run_id": run_id,
            "conf": conf if conf is None or isinstance(conf, str) else json.dumps(conf)}


def test_a_claim_without_a_conf_starts_the_object_alone() -> None:
    assert claim_conf(claim()) == OWN
    assert runs_for_claims([claim(run_id="upload__v1")]) == [{"trigger_run_id": "upload__v1", "conf": OWN}]


def test_an_apps_checked_conf_is_the_runs_conf_with_the_claims_video_id() -> None:
    assert claim_conf(claim(ASKED)) == {**ASKED, "video_id": "v1"}
    assert claim_conf(claim({**ASKED, "video_id": "v1"})) == {**ASKED, "video_id": "v1"}


@pytest.mark.parametrize(("conf", "run_id"), [
    (ASKED, "upload__v1"),  # the watcher's own claim: never written by the checked trigger
    ({**ASKED, "source": "s3://vodflow/uploads/other.mp4"}, None),  # another object
    ({**ASKED, "source": "s3://private/uploads/2026/12/07/ab/clip.mp4"}, None),
    ({**ASKED, "video_id": "someone-elses"}, None),  # another video
    ({**ASKED, "ladderr": "default"}, None),  # a field no request has
    ({**ASKED, "ladder": ["9000p"]}, None),  # a value its schema refuses
    ([SOURCE], None), ("{not json", None),
])
def test_any_other_conf_is_not_trusted(conf: Any, run_id: str | None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="vodflow.triggers.watch")
    assert claim_conf(claim(conf, **({"run_id": run_id} if run_id else {}))) == OWN
    assert "stored conf is not used" in caplog.text and "s3cret" not in caplog.text
