"""The one codec (``vodflow.codec``): values read back as they were, dicts stored by older code (hand-written
``to_dict``s, lists where tuples are now, fields added since) still read, and a union is decoded by its tag."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import ClassVar, Literal

import pytest

from vodflow.codec import Coded, decode, encode
from vodflow.media.encode.chunks import Chunk
from vodflow.media.encode.ladder import Rendition, plan_ladder
from vodflow.media.measured import IFrame, MeasuredAudio, MeasuredRendition, Segment
from vodflow.media.package.cmaf import CmafTrack, TimedSegment
from vodflow.media.pictures.thumbnails import PicturePlan, plan_pictures
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.tracks import AudioTrack, SubtitleTrack
from vodflow.pipeline.outputs.base import OutputRecord
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job
from vodflow.pipeline.work import (
    AudioResult,
    ChunkOfVideo,
    ChunkResult,
    WholeAudio,
    WholeVideo,
    WholeVideoResult,
    item_from_dict,
    result_from_dict,
)
from vodflow.triggers.uploads import UploadGrant

RENDITION = {"name": "360p", "width": 640, "height": 360, "video_kbps": 800, "maxrate_kbps": 1200,
             "bufsize_kbits": 1600, "audio_kbps": 96, "fps": "30", "codec": "h264", "dynamic_range": "SDR"}
MEASURED = {"name": "360p", "width": 640, "height": 360, "frame_rate": "30", "codecs": "avc1.64001e,mp4a.40.2",
            "video_codec": "avc1.64001e", "segments": [{"uri": "seg_00000.ts", "duration": 6.0, "size": 1000}],
            "iframes": [], "first_pts": 0}
RECORD = {"kind": "mp4", "name": "360p", "key": "videos/x/v1/downloads/360p.mp4", "bytes": 10,
          "content_type": "video/mp4", "duration": 6.0, "codecs": None, "filename": "x.mp4"}
PICTURES = {"poster_frame": 30, "poster_stride": 15, "poster_size": [640, 360], "thumb_frames": [0, 90],
            "thumb_size": [320, 180]}


def _json(value: object) -> object:
    return json.loads(json.dumps(value))


def test_work_items_and_results_keep_the_shape_old_runs_stored():
    """Byte for byte what the hand-written ``to_dict``s wrote (through JSON, as an XCom is)."""
    chunk = {"index": 1, "start": 30.0, "frames": 900, "first_frame": 900}
    assert json.dumps(encode(item_from_dict({"kind": "chunk", "label": "chunk 01", "chunk": chunk}))) == json.dumps(
        {"kind": "chunk", "label": "chunk 01", "chunk": chunk})
    for old in ({"kind": "renditions", "label": "1080p 720p"}, {"kind": "audio", "label": "audio"}):
        assert json.dumps(encode(item_from_dict(old))) == json.dumps(old)
    whole = {"kind": "renditions", "measured": [MEASURED], "pictures": ["videos/x/v1/thumbs/poster.jpg"],
             "audio": [{"name": "en", "language": "en", "title": "English", "segments": []}],
             "subtitles": [{"language": "en", "title": "English", "key": "videos/x/v1/chunks/0.vtt"}],
             "outputs": [RECORD], "renditions": [RENDITION]}
    chunk_result = {"kind": "chunk", "index": 3, "keys": {"360p": "k"}, "pictures": [], "renditions": [RENDITION],
                    "vmaf_frames": {"360p": [91.5, 93.0]}, "first_frame": 0}
    audio = {"kind": "audio", "keys": {"96": "k"}, "audio": [], "subtitles": []}
    for old in (whole, chunk_result, audio):
        assert json.dumps(encode(result_from_dict(_json(old)))) == json.dumps(old)
    plan = {"renditions": [RENDITION], "pictures": PICTURES, "duration": 12.5, "chunks": 0, "cmaf_renditions": []}
    assert json.dumps(encode(decode(EncodePlan, plan))) == json.dumps(plan)


def test_dicts_from_before_a_field_existed_still_read():
    """Results stored before ``audio``, ``subtitles``, ``outputs``, ``renditions`` and ``vmaf_frames``."""
    old = result_from_dict({"kind": "renditions", "measured": [MEASURED], "pictures": []})
    assert old == WholeVideoResult(measured=(MeasuredRendition.from_dict(MEASURED),))
    assert result_from_dict({"kind": "chunk", "index": 2, "keys": {}, "pictures": ["p"]}) == ChunkResult(
        index=2, pictures=("p",))
    assert result_from_dict({"kind": "audio", "keys": {"96": "k"}}) == AudioResult(keys={"96": "k"})
    before_codecs = {k: v for k, v in RENDITION.items() if k not in ("codec", "dynamic_range")}
    assert decode(Rendition, before_codecs) == decode(Rendition, RENDITION)  # H.264, SDR
    assert decode(EncodePlan, {"renditions": [before_codecs], "pictures": PICTURES, "duration": 1.0}).codecs == (
        "h264",)
    measured = decode(MeasuredRendition, {k: v for k, v in MEASURED.items() if k not in ("iframes", "first_pts")})
    assert measured == MeasuredRendition.from_dict(MEASURED)


def test_values_round_trip_through_json():
    plan = EncodePlan(renditions=tuple(plan_ladder(1920, 1080, "30", True).renditions),
                      pictures=plan_pictures(1920, 1080, 60.0, "30"), duration=60.0)
    assert EncodePlan.from_dict(_json(plan.to_dict())) == plan
    assert isinstance(decode(PicturePlan, PICTURES).poster_size, tuple)
    job = Job(video_id="v", version=2, run_id="r", source_uri="s3://b/k", etag="e", size=1, title="t",
              ladder=["720p", "360p"], notify_email="a@example.com", captions=[{"source": "s3://b/c.vtt"}])
    assert Job.from_dict(_json(job.to_dict())) == job
    assert decode(OutputRecord, RECORD) == OutputRecord(**RECORD)
    for item in (WholeVideo("1080p"), WholeAudio(), ChunkOfVideo(Chunk(index=0, start=0.0, frames=None))):
        assert item_from_dict(_json(item.to_dict())) == item
    audio = MeasuredAudio("fr", "fr", "Français", [Segment("a.ts", 6.0, 10)])
    result = WholeVideoResult(measured=(MeasuredRendition.from_dict(MEASURED),), audio=(audio,),
                              outputs=(OutputRecord(**RECORD),))
    assert result_from_dict(_json(result.to_dict())) == result


def test_media_values_read_as_their_own_methods_read_them():
    """The codec agrees with media's hand-written methods, so they can go once media's move is merged."""
    probed = SourceInfo(duration=10.0, width=1920, height=1080, fps="30", vfr=False, video_codec="h264",
                        pix_fmt="yuv420p", bit_depth=8, hdr=False, interlaced=False, rotation=0, has_audio=True,
                        audio_codec="aac", audio_channels=2, format_name="mov,mp4", size_bytes=1, bitrate=1,
                        audio_tracks=(AudioTrack(0, "en", "English", True),),
                        subtitle_tracks=(SubtitleTrack(0, "subrip", "en", "English"),))
    assert encode(probed) == probed.to_dict()
    track = CmafTrack(name="720p", kind="video", codec="avc1.64001f", timescale=90000, init_size=800,
                      segments=[TimedSegment("s1.m4s", 6.0, 100, start=0, ticks=540000)],
                      iframes=[IFrame("s1.m4s", 0, 50, 6.0)], width=1280, height=720, frame_rate="30")
    assert encode(track) == track.to_dict()
    assert decode(CmafTrack, _json(track.to_dict())) == CmafTrack.from_dict(_json(track.to_dict())) == track
    assert decode(SourceInfo, _json(probed.to_dict())) == SourceInfo.from_dict(_json(probed.to_dict())) == probed


def test_an_upload_grant_is_the_json_the_api_always_sent():
    grant = UploadGrant(key="uploads/a.mp4", source="s3://b/uploads/a.mp4", url="https://x", method="PUT",
                        headers={"Content-Type": "video/mp4"}, content_length=5,
                        expires_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert grant.to_dict() == {"key": "uploads/a.mp4", "source": "s3://b/uploads/a.mp4", "url": "https://x",
                               "method": "PUT", "headers": {"Content-Type": "video/mp4"}, "content_length": 5,
                               "expires_at": "2026-01-02T03:04:05Z"}
    assert UploadGrant.from_dict(grant.to_dict()) == grant


class Colour(Enum):
    RED = "red"


@dataclass(frozen=True)
class Spot(Coded):
    kind: ClassVar[str] = "spot"
    colour: Colour
    shade: Literal["light", "dark"] = "light"
    at: tuple[int, int] = (0, 0)
    tags: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Other(Coded):
    kind: ClassVar[str] = "spot"


def test_enums_literals_fixed_tuples_and_a_union_whose_tags_clash():
    spot = Spot(Colour.RED, "dark", (1, 2), {"a": [1.5]})
    assert spot.to_dict() == {"kind": "spot", "colour": "red", "shade": "dark", "at": (1, 2), "tags": {"a": [1.5]}}
    assert Spot.from_dict(_json(spot.to_dict())) == spot
    with pytest.raises(ValueError):
        Spot.from_dict({"colour": "red", "shade": "grey"})
    with pytest.raises(TypeError, match="share the kind"):
        decode(Spot | Other, {"kind": "spot", "colour": "red"})
