"""The per-title ladder's complexity probe on real media: easy content measures cheaper than hard content."""

from __future__ import annotations

from pathlib import Path

import pytest

from vodflow.devtools.samples import make_action_sample, make_lecture_sample
from vodflow.media.complexity import measure_complexity
from vodflow.media.ffmpeg import FILE_PROTOCOLS
from vodflow.media.ladder import adapt_ladder, plan_ladder
from vodflow.media.probe import probe

pytestmark = pytest.mark.integration


def _probe(path: Path):
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("complexity")
    result = {}
    for name, make in (("easy", make_lecture_sample), ("hard", make_action_sample)):
        path = Path(make(str(folder / f"{name}.mp4"), 854, 480, 8.0))
        source = _probe(path)
        fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
        complexity = measure_complexity(str(path), source, list(fixed.renditions))
        result[name] = (fixed, complexity, adapt_ladder(fixed, complexity.kbps))
    return result


def test_easy_content_needs_strictly_fewer_bits_than_hard_content(measured):
    easy, hard = measured["easy"][1].kbps, measured["hard"][1].kbps
    assert easy.keys() == hard.keys() == {"480p", "360p"}
    assert all(0 < easy[name] < hard[name] for name in easy), (easy, hard)
    assert all(easy[name] * 3 < hard[name] for name in easy), "slides should be far cheaper than grain"


def test_adapted_ladders_never_exceed_the_fixed_one(measured):
    for fixed, _, adapted in measured.values():
        assert all(a.video_kbps <= f.video_kbps for a, f in zip(adapted.renditions, fixed.renditions, strict=True))
    easy_fixed, _, easy_adapted = measured["easy"]
    assert all(a.video_kbps < f.video_kbps for a, f in zip(easy_adapted.renditions, easy_fixed.renditions,
                                                              strict=True))
    easy_kbps = [r.video_kbps for r in easy_adapted.renditions]
    hard_kbps = [r.video_kbps for r in measured["hard"][2].renditions]
    assert all(e < h for e, h in zip(easy_kbps, hard_kbps, strict=True))
