"""Automatic captions through every step (S3 over HTTP, the Postgres catalog, real ffmpeg, the real tiny.en model):
espeak-ng speech of a known text recognised into a WebVTT subtitle rendition and transcripts; silence and a tone
give no cue; a missing model or a failing recogniser leaves the video ready with an event saying why."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
import uuid
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import m3u8
import pytest

from vodflow import layout
from vodflow.devtools.speech_sample import make_spoken_video, make_tone_video, word_error_rate
from vodflow.media.package.webvtt import Cue, parse_captions
from vodflow.media.speech.cues import LINE_CHARS, MAX_SECONDS

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def published_cues(services, video_id: str, folder: Path) -> tuple[str, list[Cue], dict]:
    """The master's automatic SUBTITLES rendition: its EXT-X-MEDIA, its cues (every segment parsed strictly,
    a cue repeated across a segment boundary counted once)."""
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(folder))
    master = m3u8.load(str(folder / "hls" / "master.m3u8"))
    [media] = [m for m in master.media if m.type == "SUBTITLES" and "auto-generated" in (m.name or "")]
    playlist = m3u8.load(str(folder / "hls" / media.uri))
    cues: dict[tuple[float, float, str], Cue] = {}
    for segment in playlist.segments:
        for cue in strict_segment((folder / "hls" / Path(media.uri).parent / segment.uri).read_text()):
            cues[(cue.start, cue.end, cue.text)] = cue
    return media, sorted(cues.values(), key=lambda c: c.start), playlist


BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"
BROWSER = (BROWSER_DIR / "node_modules" / "playwright-core").exists() and shutil.which("chromium")
PAGE = """<!doctype html><video id="player" muted></video>
<label for="text-track">Subtitles</label> <select id="text-track"></select>
<script src="static/hls.min.js"></script><script src="static/player.js"></script><script>
window.hlsErrors = [];
window.hls = vodflowPlayer.attach(document.getElementById("player"), "hls/master.m3u8",
                                  { textSelect: document.getElementById("text-track") });
hls.on(Hls.Events.MANIFEST_PARSED, () => { window.parsed = true; });
hls.on(Hls.Events.ERROR, (_e, d) => hlsErrors.push(`${d.type} ${d.details} ${d.reason || ""}`));
</script>"""


def hlsjs_shows_a_cue(tree: Path, cues: list[Cue]) -> None:
    """The bundled hls.js in Chromium on the published master, through the page's player (``player.js``): it lists
    the automatic track (not selected until asked: DEFAULT=NO), the page's subtitle selector offers it, and once
    it is chosen there and the video plays, one of its cues is showing."""
    (tree / "static").mkdir()
    for name in ("hls.min.js", "player.js"):
        shutil.copy(STATIC / name, tree / "static" / name)
    (tree / "index.html").write_text(PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tree))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(["node", str(BROWSER_DIR / "captions.mjs"),  # noqa: S603
                                 f"http://127.0.0.1:{server.server_port}/index.html", "English (auto-generated)"],
                                cwd=BROWSER_DIR, capture_output=True, text=True, timeout=150, check=False)
    finally:
        server.shutdown()
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert [(t["name"], t["lang"], t["default"]) for t in findings["subtitles"]] == [
        ("English (auto-generated)", "en", False)]
    assert findings["selected_before"] == -1  # offered, never forced on
    assert findings["options"] == ["Off", "English (auto-generated) (en)"]  # the page's selector
    showing = findings["showing"]
    assert showing["label"] == "English (auto-generated)" and showing["cues"], showing
    assert any(cue.text.replace("\n", " ") == shown["text"].replace("\n", " ")
               for shown in showing["cues"] for cue in cues), showing


def strict_segment(text: str) -> list[Cue]:
    """A WebVTT segment: the header block (``WEBVTT``, then only ``X-TIMESTAMP-MAP``), then cues the project's
    parser reads strictly (timings, no stray lines); an empty segment has no cues."""
    header, _, body = text.partition("\n\n")
    lines = header.split("\n")
    assert lines[0] == "WEBVTT" and all(re.fullmatch(r"X-TIMESTAMP-MAP=MPEGTS:\d+,LOCAL:00:00:00\.000", line)
                                        for line in lines[1:]), header
    return parse_captions("WEBVTT\n\n" + body) if body.strip() else []


def auto_events(services, video_id: str) -> list[dict]:
    return [e for e in services.catalog.get_events(video_id) if e["kind"] == "auto_captions"]


def detail(event: dict) -> dict:
    value = event["detail"]
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize("chunk_seconds", [0, 12])
def test_speech_becomes_an_automatic_subtitle_rendition_and_a_transcript(services, tmp_path, chunk_seconds):
    """~38 s of espeak-ng reading 81 words in 6 sentences (known silences between them), under a 320x180 picture:
    the published WebVTT parses strictly, WER <= 25 %, each sentence's first cue starts within 0.5 s of its
    speech, cues are readable (<= 2 lines of <= 42 characters, <= 7 s, none overlapping); chunked (12 s chunks)
    the captions cover the whole video, with no cue lost or doubled at a seam."""
    sample = make_spoken_video(str(tmp_path / "talk.mp4"))
    source = upload(services, Path(sample.path), f"uploads/{uuid.uuid4().hex[:6]}/talk.mp4")
    outputs = ["hls"] if chunk_seconds else ["hls", "cmaf"]
    run = run_all(services, {"source": source, "ladder": ["240p"], "chunk_seconds": chunk_seconds,
                             "auto_captions": True, "outputs": outputs},
                  f"run-captions-{chunk_seconds}-{uuid.uuid4().hex[:4]}")
    assert [i.label for i in run["items"]].count("captions") == 1
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    media, cues, playlist = published_cues(services, video_id, tmp_path / "out")
    assert (media.language, media.name, media.default, media.autoselect) == ("en", "English (auto-generated)",
                                                                          "NO", "YES")
    text = " ".join(c.text.replace("\n", " ") for c in cues)
    wer = word_error_rate(sample.text, text)
    print(f"WER {wer:.3f}; cues: {[(c.start, c.end, c.text) for c in cues]}")
    assert wer <= 0.25, text
    for start in sample.starts:
        first = min(cues, key=lambda c: abs(c.start - start))
        assert abs(first.start - start) <= 0.5, (start, first)
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        lines = cue.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= LINE_CHARS for line in lines), cue
        assert 0 < cue.end - cue.start <= MAX_SECONDS, cue
        assert following is None or cue.end <= following.start, (cue, following)
    assert cues[-1].end >= sample.starts[-1] and cues[0].start < sample.starts[0] + 0.5  # the whole video
    assert sum(s.duration for s in playlist.segments) == pytest.approx(sample.duration, abs=0.2)
    transcript = json.loads((tmp_path / "out" / "captions" / "transcript.json").read_text())
    assert [s["start"] for s in transcript["segments"]] == sorted(s["start"] for s in transcript["segments"])
    assert word_error_rate(sample.text, (tmp_path / "out" / "captions" / "transcript.txt").read_text()) <= 0.25
    outputs = {(o["kind"], o["name"]) for o in services.catalog.get_outputs(video_id, 1)}
    assert {("captions", "transcript_txt"), ("captions", "transcript_json"), ("captions", "vtt"),
            ("auto_subtitles", "en")} <= outputs
    [event] = auto_events(services, video_id)
    assert detail(event)["status"] == "done"
    if BROWSER:  # (one published tree for both: a run costs more than the check)
        hlsjs_shows_a_cue(tmp_path / "out", cues)
    if "cmaf" in outputs:  # the fMP4 master and the MPD list the same track
        cmaf = tmp_path / "out" / "cmaf"
        [entry] = [m for m in m3u8.load(str(cmaf / "master.m3u8")).media if m.type == "SUBTITLES"]
        assert (entry.name, entry.default) == ("English (auto-generated)", "NO")
        assert all(p.stream_info.subtitles == "subs" for p in m3u8.load(str(cmaf / "master.m3u8")).playlists
                   if p.stream_info.resolution)
        assert [strict_segment((cmaf / Path(entry.uri).parent / s.uri).read_text())
                for s in m3u8.load(str(cmaf / entry.uri)).segments]
        from vodflow.media.package.dash import parse_mpd

        mpd = parse_mpd((cmaf / "manifest.mpd").read_text())
        [text] = [a for a in mpd.periods[0].adaptation_sets if a.content_type == "text"]
        assert (text.mime_type, text.lang) == ("text/vtt", "en")
        whole = parse_captions((cmaf / text.representations[0].base_urls[0].base_url_value).read_text())
        assert [(c.start, c.end, c.text) for c in whole] == [(c.start, c.end, c.text) for c in cues]


@pytest.mark.parametrize("tone", [True, False], ids=["sine", "silence"])
def test_a_tone_or_silence_gives_no_cue_and_an_event(services, tmp_path, tone):
    path = make_tone_video(str(tmp_path / "tone.mp4"), 6.0, tone=tone)
    source = upload(services, Path(path), f"uploads/{uuid.uuid4().hex[:6]}/tone.mp4")
    run = run_all(services, {"source": source, "ladder": ["240p"], "auto_captions": True},
                  f"run-tone-{uuid.uuid4().hex[:6]}")
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    assert "SUBTITLES" not in (tmp_path / "out" / "hls" / "master.m3u8").read_text()
    assert not (tmp_path / "out" / "captions").exists()
    [event] = auto_events(services, video_id)
    assert detail(event)["reason"] == "no speech found"


def test_a_missing_model_leaves_the_video_ready_with_an_event(services, tmp_path):
    path = make_tone_video(str(tmp_path / "tone.mp4"), 3.0)
    source = upload(services, Path(path), f"uploads/{uuid.uuid4().hex[:6]}/tone.mp4")
    missing = replace(services, settings=replace(services.settings, auto_captions=True,
                                                 captions_model=str(tmp_path / "no-such-model")))
    run = run_all(missing, {"source": source, "ladder": ["240p"]}, f"run-nomodel-{uuid.uuid4().hex[:6]}")
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    [event] = auto_events(services, video_id)
    assert "missing model.bin" in detail(event)["reason"]


def test_a_recogniser_that_fails_leaves_the_video_ready_with_an_event(services, tmp_path):
    """A model directory whose files are not a model (the load raises inside CTranslate2)."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a model")
    (broken / "config.json").write_text("{}")
    path = make_tone_video(str(tmp_path / "tone.mp4"), 3.0)
    source = upload(services, Path(path), f"uploads/{uuid.uuid4().hex[:6]}/tone.mp4")
    failing = replace(services, settings=replace(services.settings, captions_model=str(broken)))
    run = run_all(failing, {"source": source, "ladder": ["240p"], "auto_captions": True},
                  f"run-broken-{uuid.uuid4().hex[:6]}")
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    [event] = auto_events(services, video_id)
    assert detail(event)["reason"].startswith("speech recognition failed")
