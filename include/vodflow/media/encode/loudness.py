"""Loudness normalisation (ITU-R BS.1770 / EBU R128): measure the main audio track once, then one linear gain.

Uploads arrive anywhere from −35 to −5 LUFS; a run that asks for a target (conf/setting ``loudness``) gets its
main track moved there by a single gain for the whole track, so the mix (its loudness range, its dynamics) is
the source's. Only where that gain would push the true peak past the ceiling does a true-peak limiter (``alimiter``
at 4× the sample rate, the way BS.1770 finds true peaks) catch what goes over, and the decision says so.

The measurement is one audio-only ffmpeg pass (``ebur128=peak=true``) over exactly the signal the encode takes
(``audio_track``: same stream, same timeline, the same cut at the picture's end, as 48 kHz stereo), in the work
item that encodes the audio, just before that encode: a chunked run's audio item is already one pass over the
whole track, so the gain is the same for every chunk of the video by construction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.process import run_ffmpeg
from vodflow.media.options import EncoderSettings
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import source_input

# The range a request's target may take (LUFS), and its ceiling's (dBTP).
TARGET_RANGE = (-40.0, -5.0)
TRUE_PEAK_RANGE = (-9.0, 0.0)
# Quieter than this the track is silence or a noise floor: raising it tens of dB would only make hiss.
SILENT_LUFS = -60.0
# Shorter sound than this has too few 400 ms gating blocks for an integrated loudness worth acting on.
MIN_SECONDS = 3.0
# The AAC encode adds peaks of its own (quantisation noise spread around transients): the gain and the limiter
# aim this far under the ceiling, so the *published* true peak stays at or under it. Measured on a track limited
# to -2.5 dBTP before the encode, with 5 ms clicks: AAC at 64/96/128/160 kbps came out at -1.6/+0.2/-0.8/-2.0 dBTP
# (up to +2.7 dB); a linear gain on pink-noise bursts, up to +1.1 dB. Limited to -5 instead: -3.6/-1.8/-3.9/-4.5.
CODEC_HEADROOM_DB = 3.0
# A true-peak limiter: upsampled 4× (inter-sample peaks become samples), look-ahead limited, back to 48 kHz.
# ``level=0``: no automatic make-up gain; ``latency=1``: the look-ahead delay compensated (lip sync kept).
OVERSAMPLED_RATE = 192000
OUTPUT_RATE = 48000
# What a limited track's gain may be raised by to make up the loudness the limiter took (more would mean a
# limiter working hard on everything: a compressor, which a normalisation must not turn into).
MAX_MAKEUP_DB = 3.0


@dataclass(frozen=True)
class LoudnessTarget:
    """What a run asked for: an integrated loudness (LUFS) and a true-peak ceiling (dBTP)."""

    lufs: float
    true_peak: float = -1.0


@dataclass(frozen=True)
class Measured:
    """BS.1770 figures of a track: integrated loudness (LUFS), true peak (dBTP; -inf for silence), loudness range
    (LU) and how many seconds of sound were measured."""

    integrated: float
    true_peak: float
    lra: float
    seconds: float


@dataclass(frozen=True)
class AudioGain:
    """What the encode applies to a track: ``gain_db`` (linear, the whole track) and, when that gain alone
    would pass the ceiling, a true-peak limiter at ``limit_dbtp``."""

    gain_db: float
    limit_dbtp: float | None = None


# Each normalised audio track's gain, by its position among the source's audio streams (``a:N``): the main
# track's and each alternate's, every one measured on its own.
Gains = Mapping[int, AudioGain]


@dataclass(frozen=True)
class Decision:
    """The gain to apply (None: the track is left as it is, ``reason`` says why) and the figures behind it."""

    gain: AudioGain | None
    reason: str

    @property
    def action(self) -> str:
        if self.gain is None:
            return "left"
        return "limited" if self.gain.limit_dbtp is not None else "normalised"


def decide(measured: Measured, target: LoudnessTarget) -> Decision:
    """The one gain that moves ``measured`` to ``target.lufs``; a limiter only if that gain's peak would pass the
    ceiling (less the codec's headroom). Silent or very short sound is left alone."""
    if measured.seconds < MIN_SECONDS:
        return Decision(None, f"the sound lasts {measured.seconds:.1f} s, under {MIN_SECONDS:g} s: too short to "
                              "measure its loudness reliably")
    if not math.isfinite(measured.integrated) or measured.integrated <= SILENT_LUFS:
        return Decision(None, f"the track is silent or nearly (measured {measured.integrated:.1f} LUFS, at or "
                              f"under {SILENT_LUFS:g}): nothing to normalise")
    gain = round(target.lufs - measured.integrated, 2)
    ceiling = target.true_peak - CODEC_HEADROOM_DB
    peak_after = measured.true_peak + gain
    if peak_after <= ceiling:
        return Decision(AudioGain(gain), f"a linear gain of {gain:+.2f} dB reaches {target.lufs:g} LUFS with a true "
                                         f"peak of {peak_after:.1f} dBTP")
    return Decision(AudioGain(gain, round(ceiling, 2)),
                    f"a linear gain of {gain:+.2f} dB would put the true peak at {peak_after:.1f} dBTP, over the "
                    f"{target.true_peak:g} dBTP ceiling: a true-peak limiter holds it at {ceiling:.1f} dBTP "
                    f"(the ceiling less {CODEC_HEADROOM_DB:g} dB for the peaks the AAC encode adds)")


def made_up(gain: AudioGain, limited: Measured, target: LoudnessTarget) -> AudioGain:
    """A limited track is quieter than the gain alone made it (what the limiter took off its peaks): the gain
    raised by that loss, once, measured on the limited track (``measure(..., gain=gain)``), at most
    ``MAX_MAKEUP_DB``: the limiter then holds the peaks of a track at the target."""
    loss = target.lufs - limited.integrated
    if gain.limit_dbtp is None or not math.isfinite(loss) or loss <= 0.05:
        return gain
    return AudioGain(round(gain.gain_db + min(loss, MAX_MAKEUP_DB), 2), gain.limit_dbtp)


def applied(track: ffmpeg.nodes.FilterableStream, gain: AudioGain | None) -> ffmpeg.nodes.FilterableStream:
    """``track`` with ``gain`` applied (unchanged for None, so a run without loudness keeps its command)."""
    if gain is None:
        return track
    track = track.filter("aformat", sample_rates=OUTPUT_RATE, channel_layouts="stereo")  # what the AAC gets
    track = track.filter("volume", volume=f"{gain.gain_db:.2f}dB", precision="double")
    if gain.limit_dbtp is None:
        return track
    return (track.filter("aresample", OVERSAMPLED_RATE)
            .filter("alimiter", limit=f"{10 ** (gain.limit_dbtp / 20):.6f}", attack=5, release=50, level=0,
                    latency=1)
            .filter("aresample", OUTPUT_RATE))


def build_measure_command(src: str, source: SourceInfo, index: int | None = None, gain: AudioGain | None = None
                          ) -> list[str]:
    """One audio-only pass: the track as ``audio_track`` takes it (without the padding after an early end, which
    is silence and would only lengthen the sound measured), as 48 kHz stereo, into ``ebur128``; the video is not
    decoded. ``gain``: the track as that gain (and its limiter) leaves it.

    Read without ``-copyts`` (unlike the audio item): under ``-copyts`` ffmpeg's progress counts from the first
    timestamp it reports, and how long the sound is comes from that progress; the start then moves by at most the
    container's offset, which moves where the cut falls by as much, and no loudness figure notices."""
    stream = source_input(src)
    end = f"{source.picture_end:.6f}"
    track = (stream[f"a:{source.audio_index if index is None else index}"]
             .filter("aresample", **{"async": 1, "first_pts": 0}).filter("atrim", end=end)
             .filter("aformat", sample_rates=OUTPUT_RATE, channel_layouts="stereo"))
    track = applied(track, gain).filter("ebur128", peak="true")
    # The summary is logged at "info"; the input's metadata before it is never read (``parse_summary``).
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "info",
            *track.output("-", f="null").get_args()]


_FIGURE = r"(-?(?:\d+(?:\.\d+)?|inf))"


def parse_summary(stderr: str, seconds: float) -> Measured:
    """``ebur128``'s closing summary (the text after its last ``Summary:``; nothing before it, where a file's
    metadata is printed, is read)."""
    _, found, summary = stderr.rpartition("Summary:")
    figures = {name: re.search(rf"{label}:\s+{_FIGURE}", summary)
               for name, label in (("integrated", r"\bI"), ("lra", r"\bLRA"), ("true_peak", r"\bPeak"))}
    if not found or figures["integrated"] is None or figures["true_peak"] is None:
        raise MediaToolError("ffmpeg's loudness measurement printed no summary", stderr[-2000:])
    lra = figures["lra"]
    return Measured(integrated=float(figures["integrated"].group(1)), true_peak=float(figures["true_peak"].group(1)),
                    lra=float(lra.group(1)) if lra else 0.0, seconds=round(seconds, 3))


def measure(src: str, source: SourceInfo, settings: EncoderSettings, gain: AudioGain | None = None,
            index: int | None = None) -> Measured:
    """Measure a track (``index``: ``a:N``; by default the main one) in one audio-only pass (``gain``: after that
    gain); raises like an encode when ffmpeg fails."""
    reached: list[float] = []
    result = run_ffmpeg(build_measure_command(src, source, index, gain), duration=source.picture_end,
                        timeout=settings.timeout_for(source.duration), on_progress=reached.append,
                        redact=src if "://" in src else None)
    if result.returncode != 0:
        raise classify_failure(result)
    return parse_summary(result.stderr_tail, max(reached, default=0.0) / 100 * source.picture_end)
