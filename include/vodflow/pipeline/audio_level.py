"""The run's loudness normalisation on the worker: measure each audio track where it is encoded, decide its one
gain, say what was measured and done (one ``loudness`` event per track). The media side is
``media.encode.loudness``."""

from __future__ import annotations

import logging
import math
import time

from vodflow.media.encode.loudness import AudioGain, LoudnessTarget, decide, made_up, measure
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.tracks import AlternateAudio
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)


def audio_gains(services: Services, job: Job, probed: SourceInfo, src: str, main: bool,
                alternates: list[AlternateAudio]) -> dict[int, AudioGain]:
    """Each track's gain by its ``a:N`` (none: no target, no sound, or a track left alone): the main track's
    (``main``: this item encodes it) and every alternate's, each measured on its own.

    Called by the item that encodes the audio just before its encode, reading ``src`` as the encode does: a chunked
    run's audio item, or the whole-video item; so each track is measured once, off the chunks' critical path."""
    if job.loudness is None or not probed.has_audio:
        return {}
    target = LoudnessTarget(job.loudness, job.loudness_true_peak)
    tracks = ([(probed.audio_index, "main")] if main else []) + [(a.track.index, a.name) for a in alternates]
    gains = {index: _gain(services, job, probed, src, target, index, name) for index, name in tracks}
    return {index: gain for index, gain in gains.items() if gain is not None}


def _gain(services: Services, job: Job, probed: SourceInfo, src: str, target: LoudnessTarget, index: int,
          name: str) -> AudioGain | None:
    started = time.monotonic()
    settings = services.settings.encoder
    measured = measure(src, probed, settings, index=index)
    decision = decide(measured, target)
    gain, limited = decision.gain, None
    if gain is not None and gain.limit_dbtp is not None:  # a second pass, only here: what the limiter took
        limited = measure(src, probed, settings, gain=gain, index=index)
        gain = made_up(gain, limited, target)
    seconds = time.monotonic() - started
    log.info("Loudness of audio track %s: %s (%s) in %.2f s", name, decision.action, decision.reason, seconds)
    detail = {"track": name, "action": decision.action, "reason": decision.reason, "target_lufs": target.lufs,
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
