"""The queue and ETA estimates (vodflow.eta) and the priority a run gets (vodflow.priority)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vodflow.eta import DEFAULT_RATE, EncodeRate, encode_eta, expected_start, measured_rate
from vodflow.priority import parse_by_user, run_priority

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_encode_eta_extrapolates_the_measured_rate():
    # 20 % done after 12 s: 48 s to go
    assert encode_eta(20.0, NOW - timedelta(seconds=12), NOW) == NOW + timedelta(seconds=48)
    assert encode_eta(100.0, NOW - timedelta(seconds=12), NOW) == NOW
    assert encode_eta(0.5, NOW - timedelta(seconds=12), NOW) is None  # too early to mean anything
    assert encode_eta(50.0, None, NOW) is None


def test_expected_start_waits_for_the_slots_and_the_videos_ahead():
    # one slot, busy 30 s more, then two videos ahead of 10 s and 20 s
    assert expected_start(NOW, 1, [NOW + timedelta(seconds=30)], [10, 20]) == NOW + timedelta(seconds=60)
    # two slots: one free at once, the other busy 30 s; the 10 s video takes the free one, then the next is ours
    assert expected_start(NOW, 2, [NOW + timedelta(seconds=30)], [10]) == NOW + timedelta(seconds=10)
    assert expected_start(NOW, 2, [], []) == NOW  # a free slot: now
    # an encoding video with no ETA yet holds its slot for the fallback
    assert expected_start(NOW, 1, [None], [], fallback_busy_seconds=45) == NOW + timedelta(seconds=45)


def test_measured_rate_weighs_by_source_seconds():
    rate = measured_rate([(10.0, 20.0), (30.0, 20.0), (0.0, 5.0)])  # 40 s of source took 40 s; a bad row dropped
    assert rate == EncodeRate(1.0, 20.0)
    assert rate.encode_seconds(60.0) == 60.0 and rate.encode_seconds(None) == 20.0
    assert measured_rate([]) == DEFAULT_RATE


def test_run_priority_conf_then_user_default_then_normal():
    by_user = parse_by_user('{"premium": "high", "batch": "low", "typo": "urgent"}')
    assert by_user == {"premium": "high", "batch": "low"}
    assert run_priority({"priority": "low"}, "premium", by_user) == "low"
    assert run_priority({"priority": None}, "premium", by_user) == "high"
    assert run_priority({}, "someone", by_user) == "normal"
    assert parse_by_user("not json") == {} and parse_by_user("[1]") == {}
