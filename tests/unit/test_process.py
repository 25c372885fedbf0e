"""ffmpeg progress parsing and throttling."""

from __future__ import annotations

import pytest

from vodflow.process import Throttle, parse_progress, progress_percent

BLOCK = ["frame=300\n", "fps=58.2\n", "out_time_us=10000000\n", "out_time=00:00:10.000000\n", "progress=continue\n"]


def test_progress_from_out_time():
    assert progress_percent(parse_progress(BLOCK), 20.0) == pytest.approx(50.0)
    assert progress_percent({"out_time_us": "N/A"}, 20.0) is None
    assert progress_percent({"out_time_us": "25000000"}, 20.0) == 100.0
    assert progress_percent({"out_time_us": "-5"}, 20.0) == 0.0


def test_throttle_limits_rate_and_requires_movement():
    throttle = Throttle(interval=2.0, step=1.0)
    assert throttle.ready(1.0, now=100.0)
    assert not throttle.ready(5.0, now=101.0)  # too soon
    assert throttle.ready(5.0, now=102.5)
    assert not throttle.ready(5.5, now=110.0)  # not enough movement
