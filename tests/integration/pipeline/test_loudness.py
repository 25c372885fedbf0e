"""Loudness normalisation through every step (S3 over HTTP, the Postgres catalog): quiet and loud uploads come
out at the target, measured with ``ebur128`` on the published AAC; chunked and unchunked runs agree; silence is
left alone; a bad target is refused."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from vodflow import layout
from vodflow.errors import BadInput

from .helpers import run_all, upload

pytestmark = pytest.mark.integration

SECONDS = 12
# Pink noise in bursts (0.8 s of 1.3 s loud, the rest 20 dB down): gated like speech. At gain 0 dB it measures
# about -19 LUFS with a true peak near -7 dBTP; each source shifts it by a gain of its own.
BURSTS = (f"anoisesrc=color=pink:sample_rate=48000:amplitude=0.5:duration={SECONDS}:seed=7,"
          r"volume='if(lt(mod(t\,1.3)\,0.8)\,1\,0.1)':eval=frame,pan=stereo|c0=c0|c1=c0")
SOURCES = {
    # A quiet upload (a phone across the room): +19 dB reaches -16 LUFS with the peak well under the ceiling.
    "quiet": (-35.0, f"{BURSTS},volume=-16dB"),
    # A loud, brick-walled master: its peaks already at the limit.
    "loud": (-8.0, f"{BURSTS},volume=12.8dB,alimiter=limit=0.89:level=0"),
    # Quiet with sharp 5 ms spikes 14 dB over the noise: the gain that reaches -16 LUFS would put them far over the
    # ceiling, so the limiter has to hold them.
    "spiky": (-30.0, f"{BURSTS},volume='if(lt(mod(t\\,2)\\,0.005)\\,5\\,1)':eval=frame,volume=-11dB"),
}


def make_source(folder: Path, name: str, audio: str) -> Path:
    path = folder / f"{name}.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",  # noqa: S603
                    "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={SECONDS}",
                    "-f", "lavfi", "-i", audio, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-b:a", "192k", "-shortest", str(path)], check=True)
    return path


def ebur128(media: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of the first audio track."""
    log = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(media), "-map", "0:a:0",  # noqa: S603
                          "-af", "ebur128=peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr.rpartition("Summary:")[2]
    figure = r"(-?(?:\d+(?:\.\d+)?|inf))"
    return (float(re.search(rf"\bI:\s+{figure}", log).group(1)),
            float(re.search(rf"\bPeak:\s+{figure}", log).group(1)))


def publish(services, tmp_path: Path, path: Path, conf: dict, label: str) -> tuple[Path, str, dict]:
    """Run every step on ``path``; the published rendition's playlist, the video's id and its loudness event."""
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/{path.name}")
    run = run_all(services, {"source": source, "ladder": ["240p"], **conf}, f"run-loud-{label}")
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    out = tmp_path / f"out-{label}"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(out))
    [playlist] = (out / "hls").glob("*/index.m3u8")
    events = [e["detail"] for e in services.catalog.get_events(video_id) if e["kind"] == "loudness"]
    return playlist, video_id, (events[-1] if events else {})


@pytest.mark.parametrize("name", ["quiet", "loud"])
def test_quiet_and_loud_uploads_are_published_at_the_target_chunked_or_not(services, tmp_path, name):
    """-35 and -8 LUFS sources with target -16 and ceiling -1 dBTP: the published audio of an unchunked and of
    a chunked run (the audio item: one gain for the whole track) is at -16 ± 1 LU with a true peak ≤ -1 dBTP, and
    the two agree within 0.5 LU."""
    nominal, audio = SOURCES[name]
    path = make_source(tmp_path, name, audio)
    before, before_peak = ebur128(path)
    assert before == pytest.approx(nominal, abs=1.5), "the sample is not what the test means"
    results = {}
    for chunk_seconds in (0, 6):
        playlist, _, event = publish(services, tmp_path, path, {"loudness": -16, "chunk_seconds": chunk_seconds},
                                     f"{name}-{chunk_seconds}")
        results[chunk_seconds] = ebur128(playlist)
        print(f"{name} chunk_seconds={chunk_seconds}: source {before:.1f} LUFS / {before_peak:.1f} dBTP -> "
              f"published {results[chunk_seconds][0]:.1f} LUFS / {results[chunk_seconds][1]:.1f} dBTP; {event}")
        # The quiet one's peak lands right at the ceiling less the codec's headroom: linear or lightly limited.
        assert event["action"] == ("normalised" if name == "loud" else event["action"]), event
        assert event["measured_lufs"] == pytest.approx(before, abs=0.5)
        assert event["gain_db"] == pytest.approx(-16 - event["measured_lufs"], abs=0.01)
    for loudness, peak in results.values():
        assert loudness == pytest.approx(-16, abs=1.0)
        assert peak <= -1.0
    assert results[0][0] == pytest.approx(results[6][0], abs=0.5)


def test_a_gain_that_would_pass_the_ceiling_is_held_by_the_limiter(services, tmp_path):
    """Spikes 14 dB over a -30 LUFS track: +14 dB of gain would put them near +10 dBTP. The published track is at
    the target, its true peak at or under the ceiling (-2 dBTP asked), and the event says a limiter was used."""
    path = make_source(tmp_path, "spiky", SOURCES["spiky"][1])
    before, before_peak = ebur128(path)
    playlist, _, event = publish(services, tmp_path, path, {"loudness": -16, "loudness_true_peak": -2},
                                 "spiky")
    loudness, peak = ebur128(playlist)
    print(f"spiky: source {before:.1f} LUFS / {before_peak:.1f} dBTP -> published {loudness:.1f} LUFS / "
          f"{peak:.1f} dBTP; {event}")
    assert before_peak - before > 20  # the spikes: a linear gain to -16 LUFS would pass the ceiling
    assert event["action"] == "limited" and "limiter" in event["reason"], event
    assert loudness == pytest.approx(-16, abs=1.0)
    assert peak <= -2.0


def test_silence_is_left_alone_and_said_so(services, tmp_path):
    """A silent track: no gain (the published track is silent too), an event saying why."""
    path = make_source(tmp_path, "silent", f"anullsrc=r=48000:cl=stereo:d={SECONDS}")
    playlist, _, event = publish(services, tmp_path, path, {"loudness": -16}, "silent")
    assert event["action"] == "left" and "silent" in event["reason"], event
    assert "gain_db" not in event
    assert ebur128(playlist)[0] <= -70


def test_without_a_target_nothing_is_measured(services, tmp_path):
    """The default (the loudness setting: off) and ``loudness: false``: no measurement, no event, the track as
    it came (the argument lists are the frozen golden's: tests/unit/media/test_commands)."""
    path = make_source(tmp_path, "quiet", SOURCES["quiet"][1])
    before = ebur128(path)[0]
    for label, conf in (("default", {}), ("false", {"loudness": False})):
        playlist, _, event = publish(services, tmp_path, path, conf, label)
        assert event == {}
        assert ebur128(playlist)[0] == pytest.approx(before, abs=0.5)


@pytest.mark.parametrize("conf", [{"loudness": 0}, {"loudness": -50}, {"loudness": True}, {"loudness": "-16"},
                                  {"loudness": -16, "loudness_true_peak": 1}])
def test_a_bad_target_fails_the_run_as_an_invalid_request(services, tmp_path, conf):
    """Runs started past the checked trigger (which answers 400 from the same schema) fail at register."""
    path = make_source(tmp_path, "quiet", "anullsrc=r=48000:cl=stereo:d=2")
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/bad.mp4")
    with pytest.raises(BadInput) as caught:
        run_all(services, {"source": source, **conf}, f"run-loud-bad-{uuid.uuid4().hex[:6]}")
    assert caught.value.code == "invalid_request"
    assert "loudness" in str(caught.value)


@pytest.mark.parametrize("chunk_seconds", [0, 6])
def test_every_audio_track_is_normalised_by_its_own_gain(services, tmp_path, chunk_seconds):
    """A dubbed release: a loud French main track and a quiet English alternate (tones 24 dB apart). Each is
    measured on its own and published at the target, the main one in the variants, the alternate under
    hls/audio/en/; one event per track."""
    from vodflow.devtools.samples import make_two_language_sample

    path = Path(make_two_language_sample(str(tmp_path / "dubbed.mkv"), 8.0))
    playlist, video_id, _ = publish(services, tmp_path, path, {"loudness": -16, "chunk_seconds": chunk_seconds},
                                    f"dubbed-{chunk_seconds}")
    events = {e["detail"]["track"]: e["detail"] for e in services.catalog.get_events(video_id)
              if e["kind"] == "loudness"}
    assert set(events) == {"main", "en"}, events
    # 0.8 against 0.05 of the same tone generator: the quiet track gets 24 dB more gain.
    assert events["en"]["gain_db"] - events["main"]["gain_db"] == pytest.approx(24.1, abs=0.5), events
    for media in (playlist, playlist.parents[1] / "audio" / "en" / "index.m3u8"):
        loudness, peak = ebur128(media)
        print(f"dubbed chunk_seconds={chunk_seconds} {media.parent.name}: {loudness:.1f} LUFS / {peak:.1f} dBTP")
        assert loudness == pytest.approx(-16, abs=1.0) and peak <= -1.0


def test_a_few_seconds_of_sound_under_a_longer_picture_are_left_alone(services, tmp_path):
    """8 s of picture with 2 s of sound: the measurement counts the sound (not the silence padded after it), under
    3 s, so the track is left as it is, and the event says so."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    path = Path(make_sample(str(tmp_path / "short.mp4"), SampleSpec(160, 90, 8.0, "25", audio_seconds=2.0)))
    playlist, _, event = publish(services, tmp_path, path, {"loudness": -16}, "short")
    assert event["action"] == "left" and "too short" in event["reason"], event
    assert event["measured_seconds"] == pytest.approx(2.0, abs=0.1)
    assert ebur128(playlist)[0] == pytest.approx(ebur128(path)[0], abs=0.5)
