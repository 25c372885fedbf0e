"""The other codecs' renditions follow the H.264 ladder a run encodes (a per-title one, decided on the worker)."""

from __future__ import annotations

from dataclasses import replace

from vodflow.media.encode.codecs import CODECS, codec_ladder
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.pipeline.plan import EncodePlan


def test_a_decided_ladder_carries_the_other_codecs_with_it():
    fixed = plan_ladder(1280, 720, "30", True).renditions
    plan = EncodePlan(renditions=fixed, pictures=plan_pictures(1280, 720, 10.0, "30"), duration=10.0,
                      cmaf_renditions=(*codec_ladder(fixed, "av1", "PQ"), *codec_ladder(fixed, "hevc")))
    assert plan.with_ladder(fixed) is plan  # the planned rungs stay as they were planned
    decided = (replace(fixed[0], video_kbps=1200, maxrate_kbps=1800), *fixed[2:])  # fewer bits, a rung dropped
    after = plan.with_ladder(decided)
    assert after.renditions == decided
    assert [r.name for r in after.cmaf_renditions] == [f"{c}-{r.name}" for c in ("av1", "hevc") for r in decided]
    top = after.cmaf_renditions[0]
    assert abs(top.video_kbps - 1200 * CODECS["av1"].rate_factor) <= 10 and top.dynamic_range == "PQ"
    assert {r.dynamic_range for r in after.cmaf_renditions if r.codec == "hevc"} == {"SDR"}
    assert after.codecs == ("h264", "av1", "hevc")
    h264_only = replace(plan, cmaf_renditions=())
    assert h264_only.with_ladder(decided) == replace(h264_only, renditions=decided)
