"""The bundled player (hls.js + static/player.js) in headless Chromium on a tree with an alternate audio track,
made by the real encoder and playlist writer: both tracks listed, the switch plays the other track."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vodflow.devtools.samples import make_two_language_sample
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import audio_group_of, encode_renditions, measure_audio
from vodflow.media.options import EncoderSettings
from vodflow.media.package import hls
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe
from vodflow.media.source.tracks import alternate_audio

pytestmark = pytest.mark.integration
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"
PAGE = """<!doctype html><meta charset="utf-8"><video id="player" muted playsinline></video>
<label for="audio-track">Audio</label> <select id="audio-track"></select>
<script src="static/hls.min.js"></script><script src="static/player.js"></script>
<script>
window.loaded = [];
window.hls = vodflowPlayer.attach(document.getElementById("player"), "hls/master.m3u8",
                                  { audioSelect: document.getElementById("audio-track") });
hls.on(Hls.Events.FRAG_LOADED, (_e, d) => loaded.push(d.frag.url));
hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_e, d) => { if (d.id !== 0) window.switched = d.id; });
</script>"""


def _published_tree(root: Path) -> None:
    src = make_two_language_sample(str(root / "dubbed.mkv"), 14.0)
    path = Path(src)
    source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    renditions = list(plan_ladder(source.width, source.height, source.fps, True, ["240p"]).renditions)
    alternates = alternate_audio(source.audio_tracks)
    measured = encode_renditions(src, str(root / "hls"), source, renditions, EncoderSettings(), alternates=alternates)
    audio = audio_group_of(source, [measure_audio(str(root / "hls"), a) for a in alternates])
    for name, text in hls.render_playlists(measured, list(audio))[1].items():
        (root / "hls" / name).write_text(text)


@pytest.mark.skipif(not (BROWSER_DIR / "node_modules" / "playwright-core").exists() or not shutil.which("chromium"),
                    reason="needs `make browser` (playwright-core) and Debian's chromium")
def test_the_player_lists_both_audio_tracks_and_switches(tmp_path):
    _published_tree(tmp_path)
    (tmp_path / "static").mkdir()
    for name in ("hls.min.js", "player.js"):
        shutil.copy(STATIC / name, tmp_path / "static" / name)
    (tmp_path / "index.html").write_text(PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(["node", str(BROWSER_DIR / "audio.mjs"),  # noqa: S603
                                 f"http://127.0.0.1:{server.server_port}/index.html"],
                                cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert [(t["name"], t["lang"]) for t in findings["tracks"]] == [("Français", "fr"), ("English", "en")]
    assert findings["options"] == ["Français (fr)", "English (en)"] and not findings["select_hidden"]
    assert findings["first"] == 0  # the default (main) track first
    assert findings["switched"] == 1 and findings["now"] == 1
    assert findings["audio_fragments"] >= 1  # the English track's own segments were fetched
    assert findings["playing"]["err"] is None
