"""Loudness normalisation's decisions and commands (pure: no ffmpeg run), and the request's and settings' rules
for a target. The pipeline tests measure what is published (tests/integration/pipeline/test_loudness.py)."""

from __future__ import annotations

import math

import pytest

from vodflow.media.encode.chunks import build_audio_command
from vodflow.media.encode.loudness import (
    CODEC_HEADROOM_DB,
    MAX_MAKEUP_DB,
    AudioGain,
    LoudnessTarget,
    Measured,
    build_measure_command,
    decide,
    made_up,
    parse_summary,
)
from vodflow.media.source.info import SourceInfo
from vodflow.request import DEFAULTS, SCHEMAS, RequestError, check_fields

SUMMARY = """[Parsed_ebur128_3 @ 0x5581] Summary:

  Integrated loudness:
    I:         -35.4 LUFS
    Threshold: -45.7 LUFS

  Loudness range:
    LRA:         0.9 LU
    Threshold:   -55.6 LUFS
    LRA low:     -35.9 LUFS
    LRA high:    -35.0 LUFS

  True peak:
    Peak:      -23.4 dBFS
"""
TARGET = LoudnessTarget(-16.0, -1.0)


def figures(integrated: float, peak: float, seconds: float = 12.0) -> Measured:
    return Measured(integrated=integrated, true_peak=peak, lra=1.0, seconds=seconds)


def test_the_summary_is_read_after_its_heading_only():
    """A file's metadata is printed before the summary: a title that mimics one is never read."""
    hostile = "  Metadata:\n    title: Summary:  I: 0.0 LUFS  Peak: 0.0 dBFS\n"
    measured = parse_summary(hostile + SUMMARY, 12.0)
    assert (measured.integrated, measured.true_peak, measured.lra) == (-35.4, -23.4, 0.9)
    silent = parse_summary(SUMMARY.replace("-35.4", "-70.0").replace("-23.4 dBFS", "-inf dBFS"), 12.0)
    assert silent.integrated == -70.0 and silent.true_peak == -math.inf


def test_one_linear_gain_when_the_peak_stays_under_the_ceiling():
    decision = decide(figures(-35.4, -23.4), TARGET)
    assert decision.action == "normalised" and decision.gain == AudioGain(19.4)
    assert decide(figures(-8.8, 0.4), TARGET).gain == AudioGain(-7.2)


def test_a_gain_that_would_pass_the_ceiling_gets_a_limiter_under_it():
    decision = decide(figures(-29.9, -7.4), LoudnessTarget(-16.0, -2.0))
    assert decision.action == "limited" and "limiter" in decision.reason
    assert decision.gain == AudioGain(13.9, -2.0 - CODEC_HEADROOM_DB)


@pytest.mark.parametrize(("measured", "why"), [(figures(-70.0, -math.inf), "silent"),
                                               (figures(-65.0, -50.0), "silent"),
                                               (figures(-20.0, -5.0, seconds=2.5), "too short")])
def test_silent_or_short_sound_is_left_alone_with_the_reason(measured, why):
    decision = decide(measured, TARGET)
    assert decision.gain is None and decision.action == "left" and why in decision.reason


def test_a_limited_tracks_loss_is_made_up_once_and_bounded():
    gain = AudioGain(13.9, -5.0)
    assert made_up(gain, figures(-16.5, -5.0), TARGET) == AudioGain(14.4, -5.0)
    assert made_up(gain, figures(-25.0, -5.0), TARGET) == AudioGain(13.9 + MAX_MAKEUP_DB, -5.0)
    assert made_up(gain, figures(-15.9, -5.0), TARGET) == gain  # nothing lost
    assert made_up(AudioGain(3.0), figures(-17.0, -5.0), TARGET) == AudioGain(3.0)  # linear: never changed


def _source() -> SourceInfo:
    return SourceInfo(duration=12.0, width=160, height=90, fps="25/1", vfr=False, video_codec="h264",
                      pix_fmt="yuv420p", bit_depth=8, hdr=False, interlaced=False, rotation=0, has_audio=True,
                      audio_codec="aac", audio_channels=2, format_name="mp4", size_bytes=1, bitrate=1)


def test_the_gain_is_in_the_audio_command_and_nothing_else_changes_without_one():
    """No gain: the audio item's command is the one from before loudness existed (the H.264 golden checks the
    whole-video command); a gain: volume on the track, a limiter only when asked."""
    source = _source()
    plain = build_audio_command("in.mp4", "/w", source, [64, 128])
    assert plain == build_audio_command("in.mp4", "/w", source, [64, 128], audio_gains=None)
    assert not any("volume" in arg or "alimiter" in arg for arg in plain)
    gained = " ".join(build_audio_command("in.mp4", "/w", source, [64, 128], audio_gains={0: AudioGain(-7.2)}))
    assert "volume=precision=double:volume=-7.20dB" in gained and "alimiter" not in gained
    assert gained.count("]volume=") == 1  # once, before the split into bitrates: one gain for every rendition
    limited = " ".join(build_audio_command("in.mp4", "/w", source, [64], audio_gains={0: AudioGain(13.9, -5.0)}))
    assert "aresample=192000" in limited and "alimiter=" in limited and "limit=0.562341" in limited
    assert "latency=1" in limited and "level=0" in limited  # no delay (lip sync), no automatic make-up


def test_the_measurement_reads_audio_only_into_ebur128():
    args = build_measure_command("in.mp4", _source())
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:a:0]") and "ebur128=peak=true" in graph and "v:0" not in graph
    assert args[-3:] == ["-f", "null", "-"]


@pytest.mark.parametrize("value", [0, -50, -4.9, True, "-16", {"lufs": -16}])
def test_a_bad_target_is_refused(value):
    with pytest.raises(RequestError) as caught:
        check_fields({"loudness": value})
    assert caught.value.field == "loudness"


@pytest.mark.parametrize("value", [None, False, -16, -23, -40, -5, -14.5])
def test_a_target_or_false_is_accepted(value):
    check_fields({"loudness": value})


def test_the_true_peak_ceiling_is_range_checked():
    check_fields({"loudness_true_peak": -1})
    for value in (0.5, -10, "high"):
        with pytest.raises(RequestError):
            check_fields({"loudness_true_peak": value})


def test_the_dags_params_refuse_a_bad_target():
    """What Airflow checks at trigger (the DAG's Params from SCHEMAS; a failure is the REST API's 400)."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    def params(**conf) -> ParamsDict:
        built = ParamsDict({name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
                            for name, schema in SCHEMAS.items()})
        built.update({"source": "s3://vodflow/uploads/a.mp4", **conf})
        return built

    params().validate()
    params(loudness=-16, loudness_true_peak=-2).validate()
    params(loudness=False).validate()
    for conf in ({"loudness": 3}, {"loudness": True}, {"loudness_true_peak": 2}):
        with pytest.raises(ParamValidationError):
            params(**conf).validate()
