"""The bundled player (hls.js + static/player.js) in headless Chromium on a version's early tree (the real encoder
and the early playlist renderer): it starts at 0 on the EVENT master, and the switch to the published master at the
same position — what the video page does at ready — hands the early player's buffer over: no gap, no second
played twice. Without the hand-over the same switch starts over from an empty buffer (the test can fail)."""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.package import hls
from vodflow.media.package.event_playlist import EventEntry, EventVariant, event_master, event_playlist
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"
SWITCH_AT = 4.0
PAGE = """<!doctype html><meta charset="utf-8"><video id="player" muted playsinline></video><div id="note"></div>
<script src="static/hls.min.js"></script><script src="static/player.js"></script>
<script>
const video = document.getElementById("player"), note = document.getElementById("note");
const handOver = new URLSearchParams(location.search).get("handover") === "1";
window.samples = [];
vodflowPlayer.attach(video, "tree/v1/early/master.m3u8", { startPosition: 0, note });
video.play();
let switched = false;
const timer = setInterval(() => {
  samples.push([performance.now(), video.currentTime]);
  if (!switched && video.currentTime > SWITCH_AT) {
    switched = true;
    window.switchedAt = video.currentTime;
    vodflowPlayer.attach(video, "tree/v1/hls/master.m3u8", { startPosition: video.currentTime, handOver, note });
    video.play();
  }
  if (video.currentTime > SWITCH_AT + 4 || samples.length > 300) { clearInterval(timer); window.done = true; }
}, 100);
</script>""".replace("SWITCH_AT", str(SWITCH_AT))


def _tree(root: Path) -> int:
    """A published HLS tree and its early tree beside it (EVENT playlists, ENDLIST): the number of segments."""
    src = make_sample(str(root / "clip.mp4"), SampleSpec(320, 180, 14.0, "30", audio=True))
    path = Path(src)
    source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    renditions = list(plan_ladder(source.width, source.height, source.fps, True, ["240p"]).renditions)
    version = root / "tree" / "v1"
    measured = encode_renditions(src, str(version / "hls"), source, renditions, EncoderSettings())
    for name, text in hls.render_playlists(measured)[1].items():
        (version / "hls" / name).write_text(text)
    (version / "early").mkdir()
    variants = [EventVariant(r.name, r.width, r.height, r.video_kbps, r.audio_kbps, r.fps) for r in renditions]
    (version / "early" / "master.m3u8").write_text(event_master(variants))
    for m in measured:
        entries = [EventEntry(i, f"../../hls/{m.name}/{s.uri}", s.duration) for i, s in enumerate(m.segments)]
        (version / "early" / m.name).mkdir()
        (version / "early" / m.name / "index.m3u8").write_text(event_playlist(entries, 7, len(entries) - 1)[0])
    return len(measured[0].segments)


def _play(root: Path, handover: bool) -> dict:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(["node", str(BROWSER_DIR / "handover.mjs"),  # noqa: S603
                                 f"http://127.0.0.1:{server.server_port}/index.html?handover={int(handover)}"],
                                cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    return findings


def _worst(samples: list[list[float]]) -> tuple[float, float]:
    """(the longest the position stood still or fell behind the clock, the furthest it went back), in seconds."""
    behind, back = 0.0, 0.0
    for (wall_a, t_a), (wall_b, t_b) in itertools.pairwise(samples):
        if t_a == 0:
            continue  # before it started
        behind = max(behind, (wall_b - wall_a) / 1000 - (t_b - t_a))
        back = max(back, t_a - t_b)
    return behind, back


@pytest.mark.skipif(not (BROWSER_DIR / "node_modules" / "playwright-core").exists() or not shutil.which("chromium"),
                    reason="needs `make browser` (playwright-core) and Debian's chromium")
def test_the_switch_to_the_published_master_hands_the_buffer_over(tmp_path):
    segments = _tree(tmp_path)
    (tmp_path / "static").mkdir()
    for name in ("hls.min.js", "player.js"):
        shutil.copy(STATIC / name, tmp_path / "static" / name)
    (tmp_path / "index.html").write_text(PAGE)

    handed = _play(tmp_path, handover=True)
    behind, back = _worst(handed["samples"])
    assert handed["switchedAt"] > SWITCH_AT and handed["samples"][-1][1] > SWITCH_AT + 3
    assert back == 0.0 and behind < 0.5, (behind, back)  # no second twice, no gap
    assert handed["segments"][0] == "v1/hls/180p/seg_00000.ts"  # the VOD's objects (the sample's own size)
    # Each segment once, then what hls.js fetches again at the hand-over: the segment playing twice (once to learn
    # the stream's timestamps) and one or two still being appended (seen: 2 and 3 repeats; tests/e2e the same).
    assert len(handed["segments"]) <= segments + 3, handed["segments"]
    # Without the hand-over (`handover=False`: the same switch from an empty buffer) the position falls back to 0
    # first, so `back == 0.0` above fails: seen when this test was written. Not replayed on every run: on a loaded
    # machine the restarted player's fall-back is not always sampled, and it is not what this test is about.
