"""Work items and results cross task boundaries as JSON: every kind round-trips, an unknown kind is an error."""

from __future__ import annotations

import json

import pytest

from vodflow.media.encode.chunks import plan_chunks
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.measured import MeasuredRendition, Segment
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.work import (
    AudioResult,
    ChunkOfVideo,
    ChunkResult,
    WholeAudio,
    WholeVideo,
    WholeVideoResult,
    item_from_dict,
    plan_items,
    result_from_dict,
)


def _plan(duration: float, has_audio: bool = True) -> EncodePlan:
    ladder = plan_ladder(1920, 1080, "30", has_audio)
    return EncodePlan(renditions=tuple(ladder.renditions), pictures=plan_pictures(1920, 1080, duration, "30"),
                      duration=duration)


def _through_json(value: dict) -> dict:
    return json.loads(json.dumps(value))


def test_a_short_video_is_one_item_named_by_its_renditions():
    plan = _plan(30.0)
    assert plan_items(plan, [], has_audio=True) == [WholeVideo(label="1080p 720p 480p 360p")]
    assert EncodePlan.from_dict(_through_json(plan.to_dict())) == plan


def test_a_chunked_video_has_the_audio_first_then_its_chunks():
    chunks = plan_chunks(200.0, "30", 30)
    items = plan_items(_plan(200.0), chunks, has_audio=True)
    assert [i.label for i in items] == ["audio"] + [f"chunk {n:02d}" for n in range(len(chunks))]
    assert plan_items(_plan(200.0, has_audio=False), chunks, has_audio=False)[0].label == "chunk 00"
    for item in items:
        assert item_from_dict(_through_json(item.to_dict())) == item
    assert isinstance(items[0], WholeAudio) and isinstance(items[1], ChunkOfVideo)


def test_results_round_trip():
    measured = MeasuredRendition(name="360p", width=640, height=360, frame_rate="30", codecs="avc1.64001e,mp4a.40.2",
                                 video_codec="avc1.64001e", segments=[Segment("seg_00000.ts", 6.0, 1000)], iframes=[])
    for result in (WholeVideoResult(measured=(measured,), pictures=("videos/x/v1/thumbs/poster.jpg",)),
                   ChunkResult(index=3, keys={"360p": "videos/x/v1/chunks/360p.c003.ts"}, pictures=()),
                   AudioResult(keys={"96": "videos/x/v1/chunks/audio-96k.m4a"})):
        assert result_from_dict(_through_json(result.to_dict())) == result


@pytest.mark.parametrize("data", [{"kind": "rendition", "label": "720p"}, {"label": "x"}])
def test_an_unknown_kind_is_an_error_not_a_default(data):
    with pytest.raises(ValueError, match="unknown work item kind"):
        item_from_dict(data)
    with pytest.raises(ValueError, match="unknown work result kind"):
        result_from_dict(data)


def test_a_chunked_source_with_subtitles_and_no_sound_keeps_an_audio_item():
    """The audio item reads the whole source: it is where the text subtitles are extracted."""
    chunks = plan_chunks(200.0, "30", 30)
    plan = _plan(200.0, has_audio=False)
    assert plan_items(plan, chunks, has_audio=False, has_subtitles=True)[0].label == "audio"
    assert plan_items(plan, chunks, has_audio=False)[0].label == "chunk 00"


def test_every_kind_of_work_item_has_a_handler():
    """Adding a kind is one item class (in ``WorkItem``) and one handler: a class without one fails here."""
    from typing import get_args

    from vodflow.pipeline.transcode import HANDLERS
    from vodflow.pipeline.work import WorkItem

    assert set(HANDLERS) == set(get_args(WorkItem))


def test_captions_run_beside_the_encode_and_round_trip():
    """After the whole video (the encode takes the first free slot), before the chunks (a whole-track item is never
    the tail); none for a source without sound; the item and its result cross XCom as every other."""
    from vodflow.pipeline.outputs.base import OutputRecord
    from vodflow.pipeline.work import Captions, CaptionsResult

    captions = Captions(language="en")
    assert [i.label for i in plan_items(_plan(30.0), [], has_audio=True, captions=captions)] == [
        "1080p 720p 480p 360p", "captions"]
    chunks = plan_chunks(200.0, "30", 30)
    assert [i.label for i in plan_items(_plan(200.0), chunks, has_audio=True, captions=captions)][:3] == [
        "audio", "captions", "chunk 00"]
    assert "captions" not in [i.label for i in plan_items(_plan(30.0, has_audio=False), [], has_audio=False,
                                                          captions=captions)]
    assert item_from_dict(_through_json(captions.to_dict())) == captions
    result = CaptionsResult(language="en", vtt="videos/x/v1/chunks/auto-en.vtt", cues=3, outputs=(
        OutputRecord(kind="captions", name="transcript_txt", key="videos/x/v1/captions/transcript.txt", bytes=9,
                     content_type="text/plain; charset=utf-8"),))
    assert result_from_dict(_through_json(result.to_dict())) == result


@pytest.mark.parametrize("conf,setting,expected", [
    ({}, False, None), ({}, True, "item"), ({"auto_captions": None}, True, "item"),
    ({"auto_captions": False}, True, None), ({"auto_captions": True}, False, "item"),
    ({"auto_captions": {"language": "de"}}, False, "de"),
])
def test_the_conf_decides_and_the_setting_is_the_default(conf, setting, expected):
    from vodflow.pipeline.auto_captions import requested
    from vodflow.request import check_fields

    if "auto_captions" in conf:
        check_fields(conf)
    item = requested(conf, setting)
    assert (item if item is None else (item.language or "item")) == expected


@pytest.mark.parametrize("value,valid", [(None, True), (True, True), (False, True), ({"language": "en"}, True),
                                         ({}, True), ({"language": "English"}, False), ({"model": "/etc"}, False),
                                         ("yes", False)])
def test_the_dags_params_check_auto_captions(value, valid):
    """What Airflow checks at trigger (the DAG's Params from SCHEMAS; a failure is the REST API's 400)."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    from vodflow.request import DEFAULTS, SCHEMAS

    params = ParamsDict({name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
                         for name, schema in SCHEMAS.items()})
    conf = {"source": "s3://vodflow/uploads/a.mp4", "auto_captions": value}
    if valid:
        params.update(conf)
        params.validate()
    else:
        with pytest.raises(ParamValidationError):  # Params check a value as it is set
            params.update(conf)
            params.validate()
