"""The run's loudness normalisation on the worker: measure the main track where it is encoded, decide the one
gain, say what was measured and done (event ``loudness``). The media side is ``media.encode.loudness``."""

from __future__ import annotations

import logging
import math
import time

from vodflow.media.encode.loudness import AudioGain, LoudnessTarget, decide, made_up, measure
from vodflow.media.source.info import SourceInfo
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)


def audio_gain(services: Services, job: Job, probed: SourceInfo, src: str) -> AudioGain | None:
    """The gain the item that encodes the main track applies (None: no target, no sound, or left alone).

    Called by that item just before its encode, reading ``src`` as the encode does: a chunked run's audio item,
    or the whole-video item; so the track is measured once, off the chunks' critical path."""
    if job.loudness is None or not probed.has_audio:
        return None
    target = LoudnessTarget(job.loudness, job.loudness_true_peak)
    started = time.monotonic()
    measured = measure(src, probed, services.settings.encoder)
    decision = decide(measured, target)
    gain, limited = decision.gain, None
    if gain is not None and gain.limit_dbtp is not None:  # a second pass, only here: what the limiter took
        limited = measure(src, probed, services.settings.encoder, gain=gain)
        gain = made_up(gain, limited, target)
    seconds = time.monotonic() - started
    log.info("Loudness: %s (%s) in %.2f s", decision.action, decision.reason, seconds)
    detail = {"action": decision.action, "reason": decision.reason, "target_lufs": target.lufs,
              "true_peak_ceiling": target.true_peak, "measured_lufs": _figure(measured.integrated),
              "measured_true_peak": _figure(measured.true_peak), "measured_lra": _figure(measured.lra),
              "measured_seconds": measured.seconds, "measure_seconds": round(seconds, 3)}
    if gain is not None:
        detail |= {"gain_db": gain.gain_db, "limiter_dbtp": gain.limit_dbtp,
                   "expected_lufs": round(measured.integrated + gain.gain_db, 2) if limited is None else target.lufs}
    if limited is not None:  # the limited track before its make-up gain
        detail |= {"limited_lufs": _figure(limited.integrated), "limited_true_peak": _figure(limited.true_peak)}
    try:
        services.catalog.add_event(job.video_id, "loudness", **detail)
    except Exception:  # the record of a decision is never a reason to fail the encode it serves
        log.exception("Could not record the loudness event")
    return gain


def _figure(value: float) -> float | None:
    """JSON has no -inf (the true peak of silence)."""
    return round(value, 2) if math.isfinite(value) else None
