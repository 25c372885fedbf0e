"""The per-title ladder: each rung's bitrate chosen for the quality it reaches (VMAF), not for a fixed rate.
Pure: no I/O.

``trials`` measures, for every rung, the rate and the VMAF of short trial encodes at two constant
qualities (x264 CRFs). Between and around those two points quality is taken as linear in log(rate) (VMAF grows
by about the same amount for every doubling of the rate, until it saturates); the fixed ladder's VMAF is read
off that line at the fixed rate. Per rung (rates with ``headroom``: the final encode is constrained VBR):

- the fixed rate reaches the rung's target: the lowest rate whose VMAF is still ``max(target, fixed − max_drop)``
  (never more than ``max_drop`` below what the fixed ladder gives: fewer bytes at the same quality);
- it does not, and more bits buy quality (≥ ``min_gain`` VMAF per doubling): the rate that reaches the target,
  at most ``ceiling`` × the fixed rate (the fixed ladder starves this content);
- it does not, and more bits buy little (the rung is limited by its resolution, not its rate): the fixed rate.
  A rung below its target never gets fewer bits than the fixed ladder gives it.

Never below the cheaper trial's rate (nothing is extrapolated downwards). Then the ladder is made monotonic (a rung
never gets more than the one above). A rung within ``jnd`` VMAF of the one above that is also less than 1.5×
cheaper is neither a visible step in quality nor a useful step in bandwidth: it is moved down to 1/1.5 of the
rate above when it still looks good enough there, else dropped (the lowest rung always stays, for the slowest
networks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from vodflow.media.encode.ladder import BUFSIZE_FACTOR, MAXRATE_FACTOR, MIN_VIDEO_KBPS, Ladder, Rendition
from vodflow.media.options import QualityPolicy

SATURATION = 0.5  # above the dearer trial, each doubling of the rate buys this share of the measured gain
BANDWIDTH_STEP = 1.5  # adjacent rungs closer in rate than this must differ in quality by a JND
DEFAULT_POLICY = QualityPolicy()


@dataclass(frozen=True)
class RungTrial:
    """A rung's two trial encodes (constant quality, two CRFs): the rate each needed and the VMAF it reached."""

    name: str
    fixed_kbps: int
    low_kbps: float
    low_vmaf: float
    high_kbps: float
    high_vmaf: float

    @property
    def gain(self) -> float:
        """VMAF per doubling of the rate between the two trials."""
        return (self.high_vmaf - self.low_vmaf) / max(1e-6, math.log2(self.high_kbps / self.low_kbps))

    @property
    def fixed_vmaf(self) -> float:
        return self.vmaf_at(self.fixed_kbps)

    def vmaf_at(self, kbps: float) -> float:
        """Linear in log(rate) through the two trials; above the dearer one at half the gain (quality
        saturates: the line would promise too much); within [0, 100]."""
        doublings = math.log2(kbps / self.low_kbps)
        span = math.log2(self.high_kbps / self.low_kbps)
        if doublings > span:
            doublings = span + (doublings - span) * SATURATION
        return max(0.0, min(100.0, self.low_vmaf + self.gain * doublings))

    def kbps_for(self, vmaf: float) -> float:
        """The inverse of ``vmaf_at``."""
        if self.gain <= 0:
            return self.low_kbps if vmaf <= self.low_vmaf else self.fixed_kbps
        doublings = (vmaf - self.low_vmaf) / self.gain
        span = math.log2(self.high_kbps / self.low_kbps)
        if doublings > span:
            doublings = span + (doublings - span) / SATURATION
        return self.low_kbps * 2 ** doublings

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fixed_kbps": self.fixed_kbps, "low_kbps": round(self.low_kbps),
                "low_vmaf": round(self.low_vmaf, 2), "high_kbps": round(self.high_kbps),
                "high_vmaf": round(self.high_vmaf, 2)}


@dataclass(frozen=True)
class RungChoice:
    name: str
    fixed_kbps: int
    kbps: int
    target: float
    expected_vmaf: float  # what the probe predicts at the chosen rate
    fixed_vmaf: float  # what it measured at the fixed rate
    reason: str  # saved | raised | capped | flat | moved | dropped

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fixed_kbps": self.fixed_kbps, "kbps": self.kbps, "target": self.target,
                "expected_vmaf": round(self.expected_vmaf, 2), "fixed_vmaf": round(self.fixed_vmaf, 2),
                "reason": self.reason}


def choose_rate(trial: RungTrial, target: float, policy: QualityPolicy) -> tuple[float, str]:
    """A rung's rate (kbps, unrounded) and why."""
    low, fixed = min(trial.low_kbps, trial.fixed_kbps), trial.fixed_kbps
    if trial.fixed_vmaf >= target:
        rate = trial.kbps_for(max(target, trial.fixed_vmaf - policy.max_drop)) * policy.headroom
        return min(fixed, max(low, rate)), "saved"
    if trial.gain < policy.min_gain:
        return fixed, "flat"
    wanted = trial.kbps_for(target) * policy.headroom
    cap = fixed * policy.ceiling
    return min(max(wanted, fixed), cap), "capped" if wanted > cap else "raised"


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
        expected = trial.vmaf_at(kbps / policy.headroom)
        choice = RungChoice(rendition.name, rendition.video_kbps, kbps, target, expected, trial.fixed_vmaf, reason)
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
    expected = trial.vmaf_at(kbps / policy.headroom)
    if expected >= min(choice.target, choice.fixed_vmaf) - policy.max_drop:
        return replace(choice, kbps=kbps, expected_vmaf=expected, reason="moved")
    return replace(choice, reason="dropped")


