"""VMAF and the per-title ladder on real encodes: the measurement ranks encodes as it should, and the ladder
gives easy content fewer bits than hard content, starved content more (up to the ceiling), never out of order."""

from __future__ import annotations

from pathlib import Path

import pytest

from vodflow.devtools.samples import SampleSpec, make_action_sample, make_lecture_sample, make_sample
from vodflow.media.encode.ffmpeg import normalize_picture, output_grid
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_rendition
from vodflow.media.options import EncoderSettings, QualityPolicy
from vodflow.media.quality.per_title import quality_ladder
from vodflow.media.quality.trials import probe_quality
from vodflow.media.quality.vmaf import Distorted, score
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS, source_input
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
WIDTH, HEIGHT, SECONDS = 854, 480, 8.0  # two rungs (480p, 360p), three probe windows


def probed(path: Path) -> SourceInfo:
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    """For each kind of content: the fixed ladder, the probe's trials and the per-title ladder's choices."""
    folder = tmp_path_factory.mktemp("quality")
    result = {}
    for name, make in (("easy", make_lecture_sample), ("hard", make_action_sample)):
        path = Path(make(str(folder / f"{name}.mp4"), WIDTH, HEIGHT, SECONDS))
        source = probed(path)
        fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
        trials = probe_quality(str(path), source, list(fixed.renditions), EncoderSettings())
        ladder, choices = quality_ladder(fixed, trials)
        result[name] = (path, source, fixed, trials, ladder, choices)
    return result


def test_a_much_lower_bitrate_scores_lower(decided, tmp_path):
    path, source, fixed, *_ = decided["hard"]
    rendition = fixed.renditions[0]
    scores = {}
    for kbps in (2000, 200):
        out = tmp_path / str(kbps)
        encode_rendition(str(path), str(out), source, rendition.__class__(**{
            **rendition.to_dict(), "video_kbps": kbps, "maxrate_kbps": kbps * 3 // 2, "bufsize_kbits": kbps * 2}),
            EncoderSettings())
        reference = output_grid(normalize_picture(source_input(str(path))["v:0"], source), rendition.fps)
        [scores[kbps]] = score(reference, [Distorted(str(out / "index.m3u8"))], source.width, source.height,
                               subsample=5)
    assert scores[200].mean < scores[2000].mean - 10, scores
    assert scores[200].p5 <= scores[200].mean and scores[2000].frames == 48  # 240 frames, every 5th scored


def test_easy_content_gets_strictly_fewer_bits_than_hard(decided):
    easy = sum(r.video_kbps for r in decided["easy"][4].renditions)
    hard = sum(r.video_kbps for r in decided["hard"][4].renditions)
    assert easy < hard, (decided["easy"][5], decided["hard"][5])


def test_hard_content_below_its_target_never_gets_fewer_bits_than_the_fixed_ladder(decided):
    choices = decided["hard"][5]
    starved = [c for c in choices if c.fixed_vmaf < c.target and c.reason != "dropped"]
    assert starved, choices  # grain at 480p/360p: the fixed ladder does not reach the targets
    assert all(c.kbps >= c.fixed_kbps for c in starved), choices
    assert any(c.kbps > c.fixed_kbps for c in starved), choices  # and a starved rung is raised


@pytest.mark.parametrize("content", ["easy", "hard"])
def test_no_rung_above_the_ceiling_and_the_ladder_stays_monotonic(decided, content):
    _, _, fixed, _, ladder, choices = decided[content]
    ceiling = {r.name: r.video_kbps * QualityPolicy().ceiling for r in fixed.renditions}
    assert all(r.video_kbps <= ceiling[r.name] for r in ladder.renditions), choices
    kbps = [r.video_kbps for r in ladder.renditions]
    assert kbps == sorted(kbps, reverse=True), choices
    expected = [c.expected_vmaf for c in choices if c.reason != "dropped"]
    assert expected == sorted(expected, reverse=True), choices
    assert ladder.renditions[-1].name == fixed.renditions[-1].name  # the lowest rung always stays


def test_the_probe_predicts_what_the_whole_small_video_scores(tmp_path):
    """A 640x272 source (one rung: the top, aiming at 95): the probe's VMAF at the fixed rate is what the whole
    fixed encode scores (a crop of a ninth of it predicted 86 where the video scored 96 — and the rung got 1.5x
    the bits), and a rung that scores above its target gets fewer bits."""
    path = Path(make_sample(str(tmp_path / "small.mp4"), SampleSpec(640, 272, 4.0, "24", noise=6)))
    source = probed(path)
    fixed = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    ladder, [choice] = quality_ladder(fixed, probe_quality(str(path), source, list(fixed.renditions),
                                                           EncoderSettings()))
    [rendition] = fixed.renditions
    encode_rendition(str(path), str(tmp_path / "fixed"), source, rendition, EncoderSettings())
    reference = output_grid(normalize_picture(source_input(str(path))["v:0"], source), rendition.fps)
    [published] = score(reference, [Distorted(str(tmp_path / "fixed" / "index.m3u8"))], source.width,
                        source.height, subsample=3)
    assert choice.target == 95.0
    assert abs(choice.fixed_vmaf - published.mean) <= 1.5, (choice, published)
    if published.mean >= choice.target + 0.5:
        assert choice.reason == "saved" and ladder.renditions[0].video_kbps < rendition.video_kbps, choice
