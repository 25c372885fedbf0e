"""The bundled player (static/player.js) with hls.js and dash.js (both vendored in static/, never a CDN) in headless
Chromium on a CMAF tree made by the real encoder, remux and manifest writers: hls.js plays the fMP4 multivariant
playlist and switches to every level; dash.js plays the MPD over the same files and reaches every representation."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.media.cmaftree import cmaf_tree
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "browser" / "node_modules" / "playwright-core").exists()
    or not shutil.which("chromium"), reason="needs `make browser` (playwright-core) and Debian's chromium")]
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"
HEAD = """<!doctype html><meta charset="utf-8"><video id="player" muted playsinline></video>
<script src="static/hls.min.js"></script><script src="static/dash.mediaplayer.min.js"></script>
<script src="static/player.js"></script>
<script>window.loaded = []; window.rendered = [];</script>"""
HLS_PAGE = HEAD + """<script>
const hls = vodflowPlayer.attach(document.getElementById("player"), "cmaf/master.m3u8");
hls.on(Hls.Events.MANIFEST_PARSED, () => { window.ready = true; });
hls.on(Hls.Events.FRAG_LOADED, (_e, d) => loaded.push(d.frag.url));
hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => rendered.push(d.level));
window.levels = () => hls.levels.map((l) => ({ id: l.url[0].split("/").slice(-2)[0], height: l.height || 0 }));
window.pick = (i) => { hls.currentLevel = i; };
</script>"""
DASH_PAGE = HEAD + """<script>
const video = document.getElementById("player");
const player = vodflowPlayer.attach(video, "cmaf/master.m3u8", { dash: "cmaf/manifest.mpd" });
const events = dashjs.MediaPlayer.events;
player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
player.on(events.STREAM_INITIALIZED, () => { window.ready = true; });
player.on(events.FRAGMENT_LOADING_COMPLETED, (e) => loaded.push(e.request.url));
const reps = () => player.getRepresentationsByType("video").slice().sort((a, b) => a.bandwidth - b.bandwidth);
window.levels = () => reps().map((r) => ({ id: r.id, height: r.height }));
player.on(events.QUALITY_CHANGE_RENDERED, (e) => {
  if (e.mediaType === "video") rendered.push(reps().findIndex((r) => r.id === e.newRepresentation.id));
});
window.pick = (i) => { player.setRepresentationForTypeById("video", reps()[i].id, true); };
</script>"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmaf-player")
    source = make_sample(str(root / "source.mp4"), SampleSpec(1280, 720, 24.0, "30", audio=True))
    cmaf_tree(Path(source), root)
    (root / "static").mkdir()
    for name in ("hls.min.js", "dash.mediaplayer.min.js", "player.js"):
        shutil.copy(STATIC / name, root / "static" / name)
    (root / "hls.html").write_text(HLS_PAGE)
    (root / "dash.html").write_text(DASH_PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def run_player(url: str, mode: str) -> dict:
    result = subprocess.run(["node", str(BROWSER_DIR / "cmaf.mjs"), url, mode],  # noqa: S603
                            cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180, check=False)
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    return findings


@pytest.mark.parametrize("mode", ["hls", "dash"])
def test_the_player_plays_cmaf_and_reaches_every_rendition(served, mode):
    findings = run_player(f"{served}/{mode}.html", mode)
    heights = sorted(level["height"] for level in findings["levels"])
    assert heights == [360, 480, 720]  # the three renditions of a 720p source
    assert [r["height"] for r in findings["reached"]] == [level["height"] for level in findings["levels"]]
    assert findings["audio_fragments"] >= 1 and findings["video_fragments"] >= 3
    assert findings["playing"]["err"] is None and findings["errors"] == []
