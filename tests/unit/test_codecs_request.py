"""The ``codecs`` conf field and setting (issue 24): what a request may name, the setting as its default, the
``cmaf`` output it implies, the refusal of a codec this installation cannot encode, and the plan's other-codec
renditions (none by default). Pure apart from asking an ffmpeg binary for its encoders."""

from __future__ import annotations

import json

import pytest

from vodflow.media.encode import codecs as video_codecs
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.prepare import check_codecs, other_codec_renditions
from vodflow.request import DEFAULTS, SCHEMAS, RequestError, check_fields, run_codecs, run_outputs
from vodflow.settings import Settings


def _source(hdr: bool = False) -> SourceInfo:
    return SourceInfo(duration=6.0, width=640, height=360, fps="30", vfr=False, video_codec="h264",
                      pix_fmt="yuv420p10le" if hdr else "yuv420p", bit_depth=10 if hdr else 8, hdr=hdr,
                      interlaced=False, rotation=0, has_audio=True, audio_codec="aac", audio_channels=2,
                      format_name="mov,mp4", size_bytes=1, bitrate=1, color_transfer="smpte2084" if hdr else "")


@pytest.mark.parametrize("value", [["vp8"], "vp8", ["h264", "vp9"], [], ["av1", "av1"], 5, {"av1": True},
                                   [["av1"]], ["AV1"], "h264,av1"])
def test_unknown_codecs_and_wrong_types_are_refused_naming_the_field(value):
    with pytest.raises(RequestError) as refused:
        check_fields({"codecs": value})
    assert refused.value.field == "codecs" and str(refused.value).startswith("codecs:")


@pytest.mark.parametrize(("value", "codecs"), [
    (None, ("h264",)), (["h264"], ("h264",)), (["h264", "av1"], ("h264", "av1")), ("hevc", ("h264", "hevc")),
    (["av1"], ("h264", "av1")), (["hevc", "h264", "av1"], ("h264", "hevc", "av1")),
])
def test_a_list_or_one_name_is_accepted_and_h264_is_always_first(value, codecs):
    check_fields({"codecs": value})
    assert run_codecs(value, ("h264",)) == codecs


def test_the_setting_is_the_default_and_obeys_the_same_rules():
    assert "codecs" in SCHEMAS and DEFAULTS["codecs"] is None  # a DAG param: checked by Airflow at trigger too
    assert Settings().codecs == ("h264",)
    assert run_codecs(None, ("av1",)) == ("h264", "av1")
    assert run_codecs(["hevc"], ("av1",)) == ("h264", "hevc")  # the request wins
    with pytest.raises(RequestError, match="the codecs setting"):
        run_codecs(None, ("vp8",))


def test_any_codec_but_h264_implies_the_cmaf_output():
    assert run_outputs(["hls"], ("h264",)) == ["hls"]
    assert run_outputs(["hls", "mp4"], ("h264", "av1")) == ["hls", "mp4", "cmaf"]
    assert run_outputs(["cmaf"], ("h264", "hevc")) == ["cmaf"]


def test_a_codec_this_installation_cannot_encode_is_refused(monkeypatch):
    assert check_codecs(["av1", "hevc"], Settings()) == ("h264", "av1", "hevc")  # this machine's ffmpeg 9 can
    monkeypatch.setattr(video_codecs, "modern_ffmpeg", lambda: "/nonexistent/ffmpeg")  # an install without it
    with pytest.raises(RequestError) as refused:
        check_codecs(["av1"], Settings())
    assert refused.value.field == "codecs" and "cannot encode av1" in str(refused.value)
    assert "/nonexistent" not in str(refused.value)  # no path of the server's in a client's answer
    assert check_codecs(None, Settings()) == ("h264",)  # H.264 alone needs only the system's ffmpeg


def test_the_plan_has_no_other_codec_renditions_by_default_and_a_ladder_per_codec_otherwise():
    ladder = plan_ladder(640, 360, "30", True, "default").renditions
    assert other_codec_renditions(ladder, ("h264",), _source()) == ()
    others = other_codec_renditions(ladder, ("h264", "av1", "hevc"), _source())
    assert [r.name for r in others] == [f"{c}-{r.name}" for c in ("av1", "hevc") for r in ladder]
    assert {(r.codec, r.dynamic_range) for r in others} == {("av1", "SDR"), ("hevc", "SDR")}
    assert all(o.video_kbps < r.video_kbps for o, r in zip(others, ladder * 2, strict=True))
    hdr = other_codec_renditions(ladder, ("h264", "av1"), _source(hdr=True))
    assert {r.dynamic_range for r in hdr} == {"PQ"}  # the 10-bit codecs keep an HDR10 source's range


def test_the_api_lists_a_videos_codecs_and_their_bytes_by_the_registrys_names():
    from vodflow.web.codecs_view import codec_outputs, codecs_json

    rows = [{"codec": "h264", "bytes": 900}, {"codec": "hevc", "bytes": 300}, {"codec": "av1", "bytes": 200},
            {"codec": "av1", "bytes": None}, {"codec": "<b>", "bytes": 1}, {"bytes": 100}]  # no codec: H.264
    assert codecs_json(rows) == {"codecs": ["h264", "av1", "hevc"],  # H.264 first, then the registry's order
                                 "bytes_by_codec": {"h264": 1000, "av1": None, "hevc": 300}}  # None: not done
    listed = [{"kind": "cmaf", "name": "master", "bytes": 9, "url": "/m"},
              {"kind": "cmaf", "name": "master-av1", "bytes": 4, "url": "/m1"},
              {"kind": "cmaf", "name": "master-h264", "bytes": 8, "url": "/m0"},
              {"kind": "mp4", "name": "master-hevc", "bytes": 1, "url": "/x"}]
    assert codec_outputs(listed) == {"cmaf_master_urls": {"h264": "/m0", "av1": "/m1"},
                                     "video_bytes_by_codec": {"h264": 8, "av1": 4}}


def test_a_rerun_keeps_the_codecs_its_video_asked_for_and_a_retry_may_change_them():
    from vodflow.request import check_overrides, kept_request, rerun_request

    kept = kept_request({"source": "s3://vodflow/uploads/a.mp4", "codecs": ["h264", "av1"], "title": None}, "v")
    video = {"id": "v", "source_uri": "s3://vodflow/uploads/a.mp4", "request": json.dumps(kept)}
    assert rerun_request(video)["codecs"] == ["h264", "av1"]
    assert rerun_request(video, check_overrides({"codecs": "hevc"}))["codecs"] == "hevc"
    with pytest.raises(RequestError):
        check_overrides({"codecs": ["vp9"]})
