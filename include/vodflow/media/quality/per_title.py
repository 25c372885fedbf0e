"""The per-title ladder: each rung's bitrate chosen for the quality it reaches (VMAF), not for a fixed rate.
Pure: no I/O.

``trials`` measures, for every rung, the rate and the VMAF of short trial encodes at two constant qualities (x264
CRFs), and the VMAF of the rung's picture unencoded: its ceiling (a 480p picture upscaled never looks like the
1080p source, and a still slide scores ~97 even against itself). Quality is modelled as that ceiling minus a gap
that shrinks as a power of the rate, ``gap(r) = gap_low · (r / r_low)^−α``, through the two trials: it saturates
at the ceiling, as measured curves do, where a straight line in log(rate) promised a resolution-limited rung ~3
VMAF more at its fixed rate than it reached. Each doubling of the rate then buys ``α·ln2·gap`` VMAF: less and
less (below the cheaper trial: the straight line in log(rate) that continues the curve). The fixed ladder's VMAF
is read off that curve at the fixed rate. Per rung (rates with ``headroom``: the final encode is constrained VBR,
which needs more bits than a CRF trial for the same VMAF):

- the fixed rate reaches the rung's target: the lowest rate whose VMAF is still ``max(target, fixed − max_drop)``
  — always fewer bits than the fixed ladder, never more, at most ``max_drop`` below what it gives;
- it does not: the rate that reaches the target, at most ``ceiling`` × the fixed rate, and no further than where
  a doubling of the rate still buys ``min_gain`` VMAF ("diminishing" when that stops it first; "flat" when that
  point is below the fixed rate: the rung is limited by its size, not its rate, and keeps the fixed rate).
  A rung predicted less than ``NEAR`` (0.5) below its target keeps the fixed rate ("near": the probe's error).
  A rung below its target never gets fewer bits than the fixed ladder gives it.

A saved rung never goes below half the cheaper trial's rate (at most one doubling is extrapolated downwards),
unless the fixed rate already is. Then the ladder is made monotonic (a rung never gets more than the one above).
A rung within ``jnd`` VMAF of the one above that is also less than 1.5× cheaper is neither a visible step in
quality nor a useful step in bandwidth: it is moved down to 1/1.5 of the rate above when it still looks good
enough there, else dropped (the lowest rung always stays, for the slowest networks).

Targets go by position: the top rung is judged by the top target whatever its size (a 640x272 source's only
rung aims at 95, not at what a 360p rung of a 1080p ladder aims at).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from vodflow.media.encode.ladder import BUFSIZE_FACTOR, MAXRATE_FACTOR, MIN_VIDEO_KBPS, Ladder, Rendition
from vodflow.media.options import QualityPolicy

BANDWIDTH_STEP = 1.5  # adjacent rungs closer in rate than this must differ in quality by a JND
MIN_GAP = 0.2  # VMAF: the gap to the ceiling the curve is fitted with at least (trials score within noise of it)
# VMAF: a fixed rate predicted this close below its target is kept ("near"): within what the probe gets wrong at
# the fixed rate (bench/per_title.py: ±0.5), raising it would as likely spend bits on a rung already above.
NEAR = 0.5
DOWNWARDS = 0.5  # the lowest rate chosen, as a fraction of the cheaper trial's (one doubling extrapolated)
DEFAULT_POLICY = QualityPolicy()


@dataclass(frozen=True)
class RungTrial:
    """A rung's two trial encodes (constant quality, two CRFs): the rate each needed and the VMAF it reached; and
    the VMAF of its picture unencoded (what no rate can exceed at its size)."""

    name: str
    fixed_kbps: int
    low_kbps: float
    low_vmaf: float
    high_kbps: float
    high_vmaf: float
    ceiling_vmaf: float = 100.0

    @property
    def gain(self) -> float:
        """VMAF per doubling of the rate between the two trials (the chord: for the log)."""
        return (self.high_vmaf - self.low_vmaf) / max(1e-6, math.log2(self.high_kbps / self.low_kbps))

    @property
    def ceiling(self) -> float:
        """The curve's asymptote: the measured ceiling, at least ``MIN_GAP`` above both trials."""
        return max(self.ceiling_vmaf, self.high_vmaf + MIN_GAP, self.low_vmaf + 2 * MIN_GAP)

    @property
    def low_gap(self) -> float:
        return self.ceiling - self.low_vmaf

    @property
    def exponent(self) -> float:
        """α: how fast the gap to the ceiling closes with the rate (0: a flat curve, more bits buy nothing)."""
        high_gap = min(max(self.ceiling - self.high_vmaf, MIN_GAP), self.low_gap)
        span = math.log(self.high_kbps / self.low_kbps)
        return max(0.0, math.log(self.low_gap / high_gap) / span) if span > 1e-6 else 0.0

    @property
    def fixed_vmaf(self) -> float:
        return self.vmaf_at(self.fixed_kbps)

    @property
    def low_gain(self) -> float:
        """VMAF per doubling at the cheaper trial: the slope the curve keeps below it."""
        return self.exponent * math.log(2) * self.low_gap

    def vmaf_at(self, kbps: float) -> float:
        """The curve through both trials towards the ceiling; below the cheaper trial, the straight line in
        log(rate) that continues it (the power law would fall to 0 within two doublings: hard content whose
        CRF 26 needs 4x the fixed rate); within [0, 100]."""
        if kbps < self.low_kbps:
            return max(0.0, self.low_vmaf + self.low_gain * math.log2(kbps / self.low_kbps))
        gap = self.low_gap * (kbps / self.low_kbps) ** -self.exponent
        return max(0.0, min(100.0, self.ceiling - gap))

    def gain_at(self, kbps: float) -> float:
        """VMAF bought by doubling the rate, at ``kbps`` (the curve's slope per doubling)."""
        if kbps < self.low_kbps:
            return self.low_gain
        return self.exponent * math.log(2) * (self.ceiling - self.vmaf_at(kbps))

    def kbps_for(self, vmaf: float) -> float:
        """The inverse of ``vmaf_at``: ``inf`` at or above the ceiling (no rate reaches it)."""
        gap = self.ceiling - vmaf
        if gap <= 0 or self.exponent <= 0:
            return self.low_kbps if self.exponent <= 0 and vmaf <= self.vmaf_at(self.low_kbps) else math.inf
        if vmaf < self.low_vmaf:
            return self.low_kbps * 2 ** ((vmaf - self.low_vmaf) / self.low_gain)
        return self.low_kbps * (self.low_gap / gap) ** (1 / self.exponent)

    def kbps_worth(self, min_gain: float) -> float:
        """The highest rate at which a doubling still buys ``min_gain`` VMAF (0: none does)."""
        if self.exponent <= 0:
            return 0.0
        return self.kbps_for(self.ceiling - min_gain / (self.exponent * math.log(2)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fixed_kbps": self.fixed_kbps, "low_kbps": round(self.low_kbps),
                "low_vmaf": round(self.low_vmaf, 2), "high_kbps": round(self.high_kbps),
                "high_vmaf": round(self.high_vmaf, 2), "ceiling_vmaf": round(self.ceiling_vmaf, 2)}


@dataclass(frozen=True)
class RungChoice:
    name: str
    fixed_kbps: int
    kbps: int
    target: float
    expected_vmaf: float  # what the probe predicts at the chosen rate
    fixed_vmaf: float  # what it measured at the fixed rate
    reason: str  # saved | near | raised | capped | diminishing | flat | moved | dropped

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fixed_kbps": self.fixed_kbps, "kbps": self.kbps, "target": self.target,
                "expected_vmaf": round(self.expected_vmaf, 2), "fixed_vmaf": round(self.fixed_vmaf, 2),
                "reason": self.reason}


def choose_rate(trial: RungTrial, target: float, policy: QualityPolicy) -> tuple[float, str]:
    """A rung's rate (kbps, unrounded) and why (the module's docstring)."""
    fixed, headroom = trial.fixed_kbps, policy.headroom
    if predicted(trial, fixed, policy) >= target:
        if trial.exponent <= 0:  # the same quality at every measured rate: the cheaper trial's, or a rung step
            return min(trial.low_kbps * headroom, fixed / BANDWIDTH_STEP), "saved"
        rate = trial.kbps_for(max(target, predicted(trial, fixed, policy) - policy.max_drop)) * headroom
        floor = trial.low_kbps * DOWNWARDS * headroom  # unless the fixed rate itself is below it
        return max(rate, floor) if floor < fixed else rate, "saved"
    if predicted(trial, fixed, policy) >= target - NEAR:
        return fixed, "near"
    worth = trial.kbps_worth(policy.min_gain) * headroom
    if worth <= fixed:
        return fixed, "flat"
    wanted, cap = trial.kbps_for(target) * headroom, fixed * policy.ceiling
    rate = min(wanted, worth, cap)
    return rate, "raised" if rate == wanted else "capped" if rate == cap else "diminishing"


def predicted(trial: RungTrial, kbps: float, policy: QualityPolicy) -> float:
    """The VMAF the final (constrained VBR) encode is expected to reach at ``kbps``: what a CRF trial reached at
    ``kbps / headroom``."""
    return trial.vmaf_at(kbps / policy.headroom)


def quality_ladder(ladder: Ladder, trials: dict[str, RungTrial], policy: QualityPolicy = DEFAULT_POLICY
                   ) -> tuple[Ladder, list[RungChoice]]:
    """The per-title ladder from the probe's trials, and each rung's choice (for the history)."""
    choices: list[RungChoice] = []
    kept: list[Rendition] = []
    last = len(ladder.renditions) - 1
    for position, rendition in enumerate(ladder.renditions):
        trial = trials[rendition.name]
        target = policy.target(position)
        rate, reason = choose_rate(trial, target, policy)
        kbps = max(MIN_VIDEO_KBPS, round(rate / 10.0) * 10)
        if kept:  # monotonic: never more than the rung above
            kbps = min(kbps, kept[-1].video_kbps)
        expected = predicted(trial, kbps, policy)
        choice = RungChoice(rendition.name, rendition.video_kbps, kbps, target, expected,
                            predicted(trial, rendition.video_kbps, policy), reason)
        if kept and position < last:
            above = next(c for c in reversed(choices) if c.reason != "dropped")
            if expected > above.expected_vmaf - policy.jnd and kbps * BANDWIDTH_STEP > above.kbps:
                choice = _moved_or_dropped(choice, trial, above, policy)
                if choice.reason == "dropped":
                    choices.append(choice)
                    continue
                kbps = choice.kbps
        choices.append(choice)
        kept.append(replace(rendition, video_kbps=kbps, maxrate_kbps=int(kbps * MAXRATE_FACTOR),
                            bufsize_kbits=int(kbps * BUFSIZE_FACTOR)))
    return Ladder(version=ladder.version, renditions=tuple(kept)), choices


def _moved_or_dropped(choice: RungChoice, trial: RungTrial, above: RungChoice, policy: QualityPolicy
                      ) -> RungChoice:
    """A rung too close to the one above, in quality and in rate: moved down to a useful bandwidth step if it
    still looks good enough there (within ``max_drop`` of its target or its fixed-ladder quality), else dropped."""
    kbps = max(MIN_VIDEO_KBPS, round(above.kbps / BANDWIDTH_STEP / 10.0) * 10)
    expected = predicted(trial, kbps, policy)
    if expected >= min(choice.target, choice.fixed_vmaf) - policy.max_drop:
        return replace(choice, kbps=kbps, expected_vmaf=expected, reason="moved")
    return replace(choice, reason="dropped")


