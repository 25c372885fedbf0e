"""Field patterns hold to the whole string: Python's ``$`` also matches before a final newline, so with ``^…$``
patterns a caption ``name`` "English\\n", a ``language`` "en\\n", a ``title`` "x\\n" (and a video_id, a source, a
callback or an address ending in a newline) passed ``check_fields`` and Airflow's Params alike. The patterns are
also JavaScript regexes (Airflow's trigger form): checked with node as the form would use them."""

from __future__ import annotations

import json
import shutil
import subprocess

import jsonschema
import pytest

from vodflow.media import escaping
from vodflow.request import (
    CAPTION_NAME_PATTERN,
    EMAIL_PATTERN,
    LANGUAGE_PATTERN,
    SCHEMAS,
    SOURCE_PATTERN,
    TITLE_PATTERN,
    VIDEO_ID_PATTERN,
    RequestError,
    check_fields,
    param_schemas,
)

CAPTION = {"source": "s3://vodflow/uploads/talk.en.srt", "language": "en", "name": "English"}
GOOD_FIELDS = {"source": "s3://vodflow/uploads/a.mp4", "video_id": "abc", "title": "x",
               "callback_url": "https://example.com/hook", "notify_email": "ops@example.com",
               "captions": [CAPTION], "watermark": {"image": "s3://vodflow/brand/logo.png"}}
TRAILING_NEWLINE = [
    ("captions", [{**CAPTION, "name": "English\n"}]),
    ("captions", [{**CAPTION, "language": "en\n"}]),
    ("captions", [{**CAPTION, "source": "s3://vodflow/uploads/talk.en.srt\n"}]),
    ("watermark", {"image": "s3://vodflow/brand/logo.png\n"}),
    ("title", "x\n"),
    ("video_id", "abc\n"),
    ("source", "s3://vodflow/uploads/a.mp4\n"),
    ("callback_url", "https://example.com/hook\n"),
    ("notify_email", "ops@example.com\n"),
    ("notify_email", ["ops@example.com\n"]),
]


def test_good_fields_pass():
    check_fields(GOOD_FIELDS)


@pytest.mark.parametrize("field,value", TRAILING_NEWLINE)
def test_a_trailing_newline_is_refused_by_check_fields(field, value):
    with pytest.raises(RequestError) as caught:
        check_fields({field: value})
    assert caught.value.field == field


@pytest.mark.parametrize("field,value", TRAILING_NEWLINE)
def test_a_trailing_newline_is_refused_by_the_dags_params(field, value):
    """What Airflow's Params check (jsonschema, with the source allowlist built into ``source``'s pattern)."""
    schema = param_schemas(("vodflow",))[field]
    jsonschema.validate(GOOD_FIELDS[field], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema)


def test_a_language_tag_with_a_newline_is_undetermined():
    assert escaping.language_tag("en-GB") == "en-GB"
    assert escaping.language_tag("en\n#EXT-X-X") == escaping.UNDETERMINED


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_patterns_are_javascript_regexes_that_hold_to_the_whole_string():
    patterns = {"source": SOURCE_PATTERN, "allowlisted": param_schemas(("vodflow",))["source"]["pattern"],
                "video_id": VIDEO_ID_PATTERN, "title": TITLE_PATTERN, "email": EMAIL_PATTERN,
                "language": LANGUAGE_PATTERN, "name": CAPTION_NAME_PATTERN,
                "callback": SCHEMAS["callback_url"]["pattern"]}
    good = {"source": "s3://vodflow/a.mp4", "allowlisted": "s3://vodflow/a.mp4", "video_id": "abc", "title": "x",
            "email": "a@example.com", "language": "en", "name": "English", "callback": "https://e.com/h"}
    script = ("const [p, g] = JSON.parse(process.argv[1]); const out = {};"
              "for (const k in p) { const r = new RegExp(p[k], 'u');"
              "  out[k] = [r.test(g[k]), r.test(g[k] + '\\n')]; }"
              "console.log(JSON.stringify(out));")
    result = json.loads(subprocess.run(["node", "-e", script, json.dumps([patterns, good])],  # noqa: S603
                                       capture_output=True, text=True, check=True).stdout)
    assert result == {k: [True, False] for k in patterns}
