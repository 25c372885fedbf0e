"""The other codecs follow the decided H.264 ladder (pure): same rungs, the codec's rate factor, HDR kept."""

from __future__ import annotations

from dataclasses import replace

from vodflow.media.encode.codecs import CODECS, codec_ladder
from vodflow.media.encode.ladder import MIN_VIDEO_KBPS, plan_ladder
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.pipeline.plan import EncodePlan


def test_other_codecs_follow_the_decided_h264_rungs_at_their_rate_factor():
    fixed = plan_ladder(1920, 1080, "30", True).renditions
    plan = EncodePlan(renditions=fixed, pictures=plan_pictures(1920, 1080, 10.0, "30"), duration=10.0,
                      cmaf_renditions=(*codec_ladder(fixed, "av1", "PQ"), *codec_ladder(fixed, "hevc", "PQ")))
    # Per-title saved bits on every rung and dropped 480p.
    decided = tuple(replace(r, video_kbps=r.video_kbps // 3) for r in fixed if r.name != "480p")
    followed = plan.with_ladder(decided).cmaf_renditions
    assert [r.name for r in followed] == ["av1-1080p", "av1-720p", "av1-360p",
                                         "hevc-1080p", "hevc-720p", "hevc-360p"]
    for r in followed:
        h264 = next(d for d in decided if r.name.endswith(f"-{d.name}"))
        assert abs(r.video_kbps - max(MIN_VIDEO_KBPS, h264.video_kbps * CODECS[r.codec].rate_factor)) <= 10, r
        assert r.dynamic_range == "PQ" and (r.width, r.height) == (h264.width, h264.height)
    assert replace(plan, cmaf_renditions=()).with_ladder(decided).cmaf_renditions == ()  # H.264 only: nothing follows
