"""The per-title rung rule on given trial measurements (pure): what each kind of curve gets."""

from __future__ import annotations

import pytest

from vodflow.media.encode.ladder import MAXRATE_FACTOR, plan_ladder
from vodflow.media.options import QualityPolicy, parse_targets
from vodflow.media.quality.per_title import RungTrial, quality_ladder
from vodflow.media.quality.vmaf import percentile, pooled

FIXED = plan_ladder(1920, 1080, "30", True)
POLICY = QualityPolicy(targets=(95.0, 90.0, 80.0, 70.0), max_drop=0.8, headroom=1.1)  # not the tuned defaults


def trials(points: dict[str, tuple[float, float, float, float]]) -> dict[str, RungTrial]:
    fixed = {r.name: r.video_kbps for r in FIXED.renditions}
    return {name: RungTrial(name, fixed[name], *p) for name, p in points.items()}


def decide(points):
    ladder, choices = quality_ladder(FIXED, trials(points), POLICY)
    return {r.name: r.video_kbps for r in ladder.renditions}, {c.name: c for c in choices}


def test_easy_content_saves_bits_but_stays_within_max_drop_of_the_fixed_ladder():
    # Slides: the curves are flat and high (a quarter of the rate loses little).
    kbps, choices = decide({"1080p": (500, 95.5, 2000, 97.0), "720p": (300, 90.0, 1200, 92.5),
                            "480p": (150, 81.0, 600, 84.0), "360p": (100, 70.5, 400, 73.0)})
    for name, rate in kbps.items():
        choice = choices[name]
        assert rate < choice.fixed_kbps and choice.reason in ("saved", "moved"), choice
        assert choice.expected_vmaf >= choice.fixed_vmaf - 1.0, choice
    assert sum(kbps.values()) < 0.6 * sum(r.video_kbps for r in FIXED.renditions)


def test_starved_content_is_raised_toward_its_target_up_to_the_ceiling():
    # Grain: every doubling of the rate buys ~7 VMAF, and 6 Mbps at 1080p reaches only ~80.
    kbps, choices = decide({"1080p": (10000, 85.0, 40000, 99.0), "720p": (5000, 75.0, 20000, 89.0),
                            "480p": (2000, 65.0, 8000, 79.0), "360p": (1000, 55.0, 4000, 69.0)})
    for rendition in FIXED.renditions:
        choice = choices[rendition.name]
        assert choice.fixed_vmaf < choice.target and choice.reason == "capped", choice
        assert kbps[rendition.name] == rendition.video_kbps * POLICY.ceiling
    ladder, _ = quality_ladder(FIXED, trials({"1080p": (10000, 85.0, 40000, 99.0), "720p": (5000, 75.0, 20000, 89.0),
                                              "480p": (2000, 65.0, 8000, 79.0), "360p": (1000, 55.0, 4000, 69.0)}))
    assert all(r.maxrate_kbps == int(r.video_kbps * MAXRATE_FACTOR) for r in ladder.renditions)


def test_a_rung_just_short_of_its_target_gets_only_what_reaches_it():
    kbps, choices = decide({"1080p": (2000, 88.0, 8000, 96.0), "720p": (1000, 82.0, 4000, 92.0),
                            "480p": (500, 72.0, 2000, 84.0), "360p": (250, 62.0, 1000, 74.0)})
    assert choices["1080p"].reason == "raised" and 6000 < kbps["1080p"] < 9000
    assert choices["1080p"].expected_vmaf == pytest.approx(95.0, abs=0.3)


def test_a_rung_limited_by_its_resolution_keeps_the_fixed_rate():
    # More bits buy little (1 VMAF per doubling) and it is below its target: neither raised nor lowered.
    kbps, choices = decide({"1080p": (3000, 93.0, 12000, 95.0), "720p": (1500, 86.0, 6000, 87.0),
                            "480p": (700, 70.0, 3000, 80.0), "360p": (400, 60.0, 1600, 68.0)})
    assert choices["720p"].reason == "flat" and kbps["720p"] == 3000


def test_a_rung_within_a_jnd_of_the_one_above_at_nearly_its_rate_is_moved_or_dropped():
    kbps, choices = decide({"1080p": (1000, 94.0, 4000, 97.0), "720p": (1200, 90.0, 4800, 95.0),
                            "480p": (500, 75.0, 2000, 82.0), "360p": (250, 62.0, 1000, 72.0)})
    assert choices["720p"].reason == "moved", choices  # it still looks good 1.5x below the rung above
    assert kbps["720p"] * 1.5 <= kbps["1080p"] + 10
    _, choices = decide({"1080p": (1000, 92.0, 4000, 95.5), "720p": (3000, 89.0, 12000, 99.0),
                         "480p": (500, 75.0, 2000, 82.0), "360p": (250, 62.0, 1000, 72.0)})
    assert choices["720p"].reason == "dropped", choices  # there it would not
    assert "360p" in kbps  # the lowest rung always stays


def test_the_ladder_is_monotonic_even_when_a_lower_rung_measures_harder():
    kbps, _ = decide({"1080p": (500, 95.5, 2000, 97.0), "720p": (5000, 75.0, 20000, 89.0),
                      "480p": (2000, 65.0, 8000, 79.0), "360p": (1000, 55.0, 4000, 69.0)})
    rates = list(kbps.values())
    assert rates == sorted(rates, reverse=True)


def test_targets_parse_and_reject_nonsense():
    assert parse_targets("95, 90,80") == (95.0, 90.0, 80.0)
    assert QualityPolicy(targets=(95.0, 90.0)).target(5) == 90.0
    for bad in ("", "0", "101", "95,-1"):
        with pytest.raises(ValueError):
            parse_targets(bad)


def test_pooled_scores_report_the_mean_and_the_5th_percentile():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    score = pooled([float(v) for v in range(100)])
    assert (score.mean, score.p5, score.frames) == (49.5, 4.95, 100)
