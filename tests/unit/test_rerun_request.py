"""What a re-run (retry, reprocess) asks for: the kept request, checked overrides."""

from __future__ import annotations

import json

import pytest

from vodflow.request import RequestError, check_overrides, kept_request, rerun_request

SOURCE = "s3://vodflow/uploads/a.mp4"


def test_the_kept_request_is_the_runs_known_non_null_fields_and_the_video_id():
    params = {"source": SOURCE, "video_id": None, "title": None, "ladder": ["720p", "360p"], "adaptive": False,
              "chunk_seconds": 0, "callback_url": None, "stray": 1}
    assert kept_request(params, "vid") == {"source": SOURCE, "video_id": "vid", "ladder": ["720p", "360p"],
                                           "adaptive": False, "chunk_seconds": 0}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"source": "s3://vodflow/uploads/b.mp4"}, "source"),
    ({"video_id": "other"}, "video_id"),
    ({"resolution": "4k"}, "resolution"),
    ({"ladder": ["999p"]}, "ladder"),
    ({"ladder": []}, "ladder"),
    ({"ladder": None}, "ladder"),
    ({"adaptive": "yes"}, "adaptive"),
    ({"chunk_seconds": 4000}, "chunk_seconds"),
    ({"callback_url": "javascript:alert(1)"}, "callback_url"),
    ({"title": "a\nb"}, "title"),
])
def test_overrides_are_checked_and_name_the_field(overrides, field):
    with pytest.raises(RequestError) as refused:
        check_overrides(overrides)
    assert refused.value.field == field and field in str(refused.value)


def test_a_rerun_is_the_stored_request_with_the_overrides_and_the_videos_own_id():
    video = {"id": "vid", "source_uri": SOURCE, "title": "Shown",
             "request": json.dumps({"source": SOURCE, "video_id": "vid", "ladder": "mobile", "adaptive": True,
                                    "callback_url": "https://e.com/h", "retired_option": 3})}
    assert rerun_request(video) == {"source": SOURCE, "video_id": "vid", "ladder": "mobile", "adaptive": True,
                                    "callback_url": "https://e.com/h"}
    changed = check_overrides({"ladder": ["480p"], "callback_url": None, "title": "New"})
    assert rerun_request(video, changed) == {"source": SOURCE, "video_id": "vid", "ladder": ["480p"],
                                             "adaptive": True, "title": "New"}
    # A row from before the request was kept: what the catalog knows.
    assert rerun_request({**video, "request": None}) == {"source": SOURCE, "title": "Shown", "video_id": "vid"}
    assert rerun_request({**video, "request": None, "title": None}) == {"source": SOURCE, "video_id": "vid"}
