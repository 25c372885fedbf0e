"""The per-title rung rule on given trial measurements (pure): what each kind of curve gets."""

from __future__ import annotations

import math
import random

import pytest

from vodflow.media.encode.ladder import MAXRATE_FACTOR, plan_ladder
from vodflow.media.options import QualityPolicy, parse_targets
from vodflow.media.quality.per_title import NEAR, RungTrial, choose_rate, predicted, quality_ladder
from vodflow.media.quality.vmaf import percentile, pooled

FIXED = plan_ladder(1920, 1080, "30", True)
POLICY = QualityPolicy(targets=(95.0, 90.0, 80.0, 70.0), max_drop=0.8, headroom=1.1)  # not the tuned defaults


def trials(points: dict[str, tuple[float, ...]]) -> dict[str, RungTrial]:
    fixed = {r.name: r.video_kbps for r in FIXED.renditions}
    return {name: RungTrial(name, fixed[name], *p) for name, p in points.items()}


def decide(points):
    ladder, choices = quality_ladder(FIXED, trials(points), POLICY)
    return {r.name: r.video_kbps for r in ladder.renditions}, {c.name: c for c in choices}


def test_the_curve_passes_through_both_trials_and_saturates_at_the_ceiling():
    trial = RungTrial("480p", 1500, 400, 73.0, 1100, 79.0, 80.5)
    assert trial.vmaf_at(400) == pytest.approx(73.0) and trial.vmaf_at(1100) == pytest.approx(79.0)
    assert 79.0 < trial.vmaf_at(1500) < trial.vmaf_at(6000) < 80.5  # more bits, less and less quality
    assert trial.gain_at(1500) < trial.gain_at(400)
    assert trial.kbps_for(trial.vmaf_at(900)) == pytest.approx(900)
    assert trial.kbps_for(80.5) == math.inf  # no rate buys the ceiling


def test_easy_content_saves_bits_but_stays_within_max_drop_of_the_fixed_ladder():
    # Slides: the curves are flat and close to their ceilings (a quarter of the rate loses little).
    kbps, choices = decide({"1080p": (450, 94.0, 3600, 96.9, 97.8), "720p": (260, 86.5, 860, 90.5, 91.3),
                            "480p": (155, 73.1, 390, 78.8, 80.3), "360p": (110, 62.0, 250, 68.5, 70.6)})
    for name, rate in kbps.items():
        choice = choices[name]
        assert rate < choice.fixed_kbps and choice.reason == "saved", choice
        assert choice.expected_vmaf >= choice.fixed_vmaf - POLICY.max_drop - 0.1, choice
    assert sum(kbps.values()) < 0.4 * sum(r.video_kbps for r in FIXED.renditions)


def test_a_small_sources_only_rung_is_judged_by_the_top_target():
    # 640x272: one rung, named 360p, but the top of its ladder: it aims at 95, not at a 360p rung's 70.
    small = plan_ladder(640, 272, "24", True)
    assert [r.name for r in small.renditions] == ["360p"]
    above = {"360p": RungTrial("360p", 600, 370, 93.2, 1000, 98.1, 99.2)}  # fixed ≈ 95.6: above 95
    ladder, [choice] = quality_ladder(small, above, POLICY)
    assert choice.target == 95.0 and choice.reason == "saved" and ladder.renditions[0].video_kbps < 600
    below = {"360p": RungTrial("360p", 600, 370, 84.0, 1000, 93.0, 99.0)}  # fixed ≈ 88: below 95
    ladder, [choice] = quality_ladder(small, below, POLICY)
    assert choice.target == 95.0 and ladder.renditions[0].video_kbps > 600, choice


def test_starved_content_is_raised_toward_its_target_up_to_the_ceiling():
    # Grain: every doubling of the rate buys ~7 VMAF, and 6 Mbps at 1080p reaches only ~80.
    points = {"1080p": (10000, 85.0, 40000, 99.0, 100.0), "720p": (5000, 75.0, 20000, 89.0, 95.0),
              "480p": (2000, 65.0, 8000, 79.0, 90.0), "360p": (1000, 55.0, 4000, 69.0, 85.0)}
    kbps, choices = decide(points)
    for rendition in FIXED.renditions:
        choice = choices[rendition.name]
        assert choice.fixed_vmaf < choice.target and choice.reason == "capped", choice
        assert kbps[rendition.name] == rendition.video_kbps * POLICY.ceiling
    ladder, _ = quality_ladder(FIXED, trials(points))
    assert all(r.maxrate_kbps == int(r.video_kbps * MAXRATE_FACTOR) for r in ladder.renditions)


def test_a_rung_just_short_of_its_target_gets_only_what_reaches_it():
    kbps, choices = decide({"1080p": (2000, 84.0, 8000, 96.0, 100.0), "720p": (1000, 82.0, 4000, 92.0, 95.0),
                            "480p": (500, 72.0, 2000, 84.0, 90.0), "360p": (250, 62.0, 1000, 74.0, 80.0)})
    assert choices["1080p"].reason == "raised" and 6000 < kbps["1080p"] < 9000, choices["1080p"]
    assert choices["1080p"].expected_vmaf == pytest.approx(95.0, abs=0.3)


def test_a_rung_where_more_bits_buy_little_is_not_raised():
    # Below its target, but close to what its size allows: a doubling of the rate buys < min_gain (Big Buck
    # Bunny's 720p: 1.5x the bits for +1.4 VMAF).
    kbps, choices = decide({"1080p": (3000, 93.0, 12000, 95.0, 96.0), "720p": (1500, 86.0, 6000, 87.0, 87.5),
                            "480p": (700, 70.0, 3000, 80.0, 90.0), "360p": (400, 60.0, 1600, 68.0, 80.0)})
    assert choices["720p"].reason == "flat" and kbps["720p"] == 3000
    # More bits help, up to a point: the rung stops where a doubling stops buying min_gain, short of the ceiling.
    trial = RungTrial("1080p", 6000, 3000, 80.0, 12000, 88.0, 90.0)
    kbps, choices = decide({"1080p": trial_points(trial), "720p": (1500, 86.0, 6000, 87.0, 87.5),
                            "480p": (700, 70.0, 3000, 80.0, 90.0), "360p": (400, 60.0, 1600, 68.0, 80.0)})
    choice = choices["1080p"]
    assert choice.reason == "diminishing" and 6000 < kbps["1080p"] < 6000 * POLICY.ceiling, choice
    assert trial.gain_at(kbps["1080p"] / POLICY.headroom) == pytest.approx(POLICY.min_gain, abs=0.1)


def trial_points(trial: RungTrial) -> tuple[float, ...]:
    return trial.low_kbps, trial.low_vmaf, trial.high_kbps, trial.high_vmaf, trial.ceiling_vmaf


def random_trial(rng: random.Random, name: str, fixed: int) -> RungTrial:
    low = fixed * rng.uniform(0.05, 3.0)
    low_vmaf = rng.uniform(20, 97)
    high_vmaf = min(99.5, low_vmaf + rng.uniform(-1, 20))
    return RungTrial(name, fixed, low, low_vmaf, low * rng.uniform(1.5, 10), high_vmaf,
                     rng.uniform(high_vmaf - 1, 100))


@pytest.mark.parametrize("seed", range(200))
def test_rules_hold_on_any_curves(seed):
    """Whatever the probe measured: a rung whose fixed rate reaches its target gets fewer bits (never more);
    one just below it keeps the fixed rate; one further below gets at least the fixed rate, and reaches its
    target unless the ceiling or min_gain stops it first — before the ladder's monotonic and bandwidth-step
    passes, which only ever lower a rate."""
    rng = random.Random(seed)
    policy = QualityPolicy(headroom=rng.choice((1.0, 1.2)), max_drop=rng.choice((0.5, 1.2)))
    fixed = plan_ladder(1920, 1080, "30", True)
    measured = {r.name: random_trial(rng, r.name, r.video_kbps) for r in fixed.renditions}
    ladder, choices = quality_ladder(fixed, measured, policy)
    for position, rendition in enumerate(fixed.renditions):
        trial, target = measured[rendition.name], policy.target(position)
        rate, reason = choose_rate(trial, target, policy)
        fixed_vmaf = predicted(trial, rendition.video_kbps, policy)
        if fixed_vmaf >= target:
            assert reason == "saved" and rate < rendition.video_kbps, (trial, rate)
            assert predicted(trial, rate, policy) >= min(target, fixed_vmaf - policy.max_drop) - 1e-6, (trial, rate)
        elif fixed_vmaf >= target - NEAR:
            assert (rate, reason) == (rendition.video_kbps, "near")
        else:
            assert rendition.video_kbps <= rate <= rendition.video_kbps * policy.ceiling + 1e-6, (trial, rate)
            reached = predicted(trial, rate, policy) >= target - 1e-6
            capped = rate == pytest.approx(rendition.video_kbps * policy.ceiling)
            not_worth = trial.gain_at(rate / policy.headroom) <= policy.min_gain + 1e-6
            assert reached or capped or not_worth, (trial, rate, reason)
    above = {c.name: c for c in choices if c.fixed_vmaf >= c.target}
    assert all(r.video_kbps < above[r.name].fixed_kbps for r in ladder.renditions if r.name in above), choices


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
