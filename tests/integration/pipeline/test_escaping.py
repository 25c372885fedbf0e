"""Hostile strings from an upload's metadata and from a request, through every step (S3 over HTTP, the Postgres
catalog): what is published parses with ``m3u8`` and ``mpegdash`` into exactly the variants and tracks the source
has, with no URI outside the version's tree; sidecar captions over the size limit are refused before a read."""

from __future__ import annotations

import dataclasses
import functools
import json
import posixpath
import re
import shutil
import subprocess
import threading
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vodflow import errors, layout, pipeline
from vodflow.errors import BadInput
from vodflow.pipeline.services import Job

from .helpers import upload

pytestmark = pytest.mark.integration
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
STATIC = Path(__file__).resolve().parents[3] / "include" / "vodflow" / "web" / "static"

EVIL = "http://evil.example"
AUDIO_TITLE = (f'Dub "evil",\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1.4d401e"\n{EVIL}/x.m3u8\n'
               f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="x",URI="{EVIL}/y.m3u8"')
AUDIO_LANGUAGE = f'fr"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{EVIL}/a.m3u8'
SUBTITLE_TITLE = f'Subs "a",\r\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="e",URI="{EVIL}/s.m3u8"'
SUBTITLE_LANGUAGE = 'en"\r\n#EXT-X-ENDLIST'
CAPTION_NAME = f'Cap "x",URI="{EVIL}/c.m3u8"'
# A cue whose text carries a timing line: written as is, a WebVTT reader takes it for a new 9-minute cue.
SIDECAR_SRT = ("1\n00:00:01,000 --> 00:00:02,500\nHello\n00:00:00.000 --> 00:09:00.000\nInjected\n\n"
               "2\n00:00:03,000 --> 00:00:04,000\nBye\n")
SOURCE_SRT = "1\n00:00:01,000 --> 00:00:02,500\nHello, <i>world</i>.\n\n2\n00:00:05,500 --> 00:00:07,000\nTwo.\n"
BCP47 = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$", re.IGNORECASE)
TIMING = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$")


def make_hostile_sample(folder: Path, seconds: float = 8.0) -> Path:
    """An MKV whose tracks' tags carry quotes, line breaks, commas and whole playlist lines: English (default, no
    title), a second audio track with a hostile title and language, a third titled like the first ("English"),
    and an SRT track with a hostile title and language."""
    srt, out = folder / "source.srt", folder / "hostile.mkv"
    srt.write_text(SOURCE_SRT)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                    *[arg for hz in (440, 660, 880) for arg in ("-f", "lavfi", "-i", f"sine=frequency={hz}:"
                                                                                     "sample_rate=48000")],
                    "-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:a", "-map", "4:s",
                    "-t", f"{seconds}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-ac", "2", "-c:s", "srt",
                    "-metadata:s:a:0", "language=eng", "-disposition:a:0", "default",
                    "-metadata:s:a:1", f"language={AUDIO_LANGUAGE}", "-metadata:s:a:1", f"title={AUDIO_TITLE}",
                    "-disposition:a:1", "0",
                    "-metadata:s:a:2", "language=eng", "-metadata:s:a:2", "title=English", "-disposition:a:2", "0",
                    "-metadata:s:s:0", f"language={SUBTITLE_LANGUAGE}", "-metadata:s:s:0", f"title={SUBTITLE_TITLE}",
                    str(out)], check=True)
    return out


def _inside(tree: Path, playlist: Path, uri: str) -> Path:
    """The file a playlist's URI names, which must be a relative path inside the tree."""
    assert "://" not in uri and not uri.startswith("/") and '"' not in uri and "\n" not in uri, uri
    target = Path(posixpath.normpath((playlist.parent / uri).as_posix()))
    assert target.is_relative_to(tree), f"{uri} (in {playlist.name}) leaves the tree"
    assert target.exists(), f"{uri} (in {playlist.relative_to(tree)}) names no published file"
    return target


def _check_playlists(tree: Path) -> None:
    """Every playlist under ``tree`` parses, and every URI it holds is a published file of the tree."""
    import m3u8

    for path in tree.rglob("*.m3u8"):
        playlist = m3u8.load(str(path))
        uris = [s.uri for s in playlist.segments] + [p.uri for p in playlist.playlists]
        uris += [p.uri for p in playlist.iframe_playlists] + [m.uri for m in playlist.media if m.uri]
        uris += [s.init_section.uri for s in playlist.segments if s.init_section]
        for uri in uris:
            _inside(tree, path, uri)
        lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
        assert len(lines) == len(playlist.segments) + len(playlist.playlists), f"{path}: a line of its own"


def _timings(folder: Path) -> set[str]:
    found = set()
    for segment in folder.glob("seg_*.vtt"):
        for line in segment.read_text().splitlines():
            if "-->" in line:
                assert TIMING.match(line), f"{segment.name}: {line!r} is not a cue timing"
                found.add(line)
    return found


def _publish_hostile(services: pipeline.Services, tmp_path: Path, chunk_seconds: float = 0) -> Path:
    """The hostile sample published (TS HLS and CMAF) with a sidecar caption whose name has quotes, as a request
    stored before the name rule would bring it; the version's tree downloaded, its folder returned."""
    key = uuid.uuid4().hex[:6]
    source = upload(services, make_hostile_sample(tmp_path), f"uploads/{key}/hostile.mkv")
    sidecar = tmp_path / "sidecar.srt"
    sidecar.write_text(SIDECAR_SRT)
    caption = {"source": upload(services, sidecar, f"uploads/{key}/sidecar.de.srt"), "language": "de"}
    params = {"source": source, "chunk_seconds": chunk_seconds, "ladder": ["240p"], "outputs": ["hls", "cmaf"],
              "captions": [caption]}
    job, probed, plan, items = pipeline.prepare(params, f"run-hostile-{key}", lambda step, job: None, services)
    job = Job(**{**job.to_dict(), "captions": [{**caption, "name": CAPTION_NAME}]})
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items], results, services)
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    tree = tmp_path / "out"
    services.storage.download_tree(layout.version_prefix(job.video_id, 1), str(tree))
    return tree


@pytest.mark.parametrize("chunk_seconds", [0, 6])
def test_hostile_track_metadata_and_caption_names_publish_only_the_real_tracks(services, tmp_path, chunk_seconds):
    """Audio and subtitle titles and languages with quotes, line breaks, commas and #EXT lines, a sidecar whose
    cue text holds a timing line, and a caption name with quotes, whole or in chunks: one variant, three audio
    renditions and two subtitle renditions, each NAME unique in its group and one line of text, each LANGUAGE a
    BCP 47 tag, every URI a file of the version; the MPD has one video, one audio and a text set per subtitle
    rendition; the sidecar keeps its two cues."""
    import m3u8
    from mpegdash.parser import MPEGDASHParser

    tree = _publish_hostile(services, tmp_path, chunk_seconds)
    master_path = tree / "hls" / "master.m3u8"
    master = m3u8.load(str(master_path))
    assert [p.uri for p in master.playlists] == ["240p/index.m3u8"]
    assert [p.uri for p in master.iframe_playlists] == ["240p/iframes.m3u8"]
    text = master_path.read_text()
    assert not re.findall(r"(?<!^)#EXT", text, re.MULTILINE), text  # hls.js looks for tags mid-line too
    tags = [line.partition(":")[0] for line in text.splitlines() if line.startswith("#")]
    assert tags.count("#EXT-X-STREAM-INF") == 1 and tags.count("#EXT-X-MEDIA") == 5, tags
    audio = [m for m in master.media if m.type == "AUDIO"]
    subs = [m for m in master.media if m.type == "SUBTITLES"]
    assert [(m.uri, m.default) for m in audio] == [(None, "YES"), ("audio/und/index.m3u8", "NO"),
                                                   ("audio/en/index.m3u8", "NO")]
    assert [m.uri for m in subs] == ["subs/und/index.m3u8", "subs/de/index.m3u8"]
    for group in (audio, subs):
        names = [m.name for m in group]
        assert len(set(names)) == len(names), names
    for media in master.media:
        assert BCP47.match(media.language), media.language
        assert media.name and len(media.name) <= 64 and not re.search(r'["\x00-\x1f\x7f\u2028\u2029]', media.name)
    assert [m.language for m in audio] == ["en", "und", "en"] and [m.language for m in subs] == ["und", "de"]
    assert audio[1].name.startswith("Dub 'evil', \uff03EXT-X-STREAM-INF") and subs[1].name.startswith("Cap 'x',URI=")
    _check_playlists(tree / "hls")
    _check_playlists(tree / "cmaf")

    mpd = MPEGDASHParser.parse((tree / "cmaf" / "manifest.mpd").read_text())
    [period] = mpd.periods
    assert [(s.content_type, len(s.representations)) for s in period.adaptation_sets] == [
        ("video", 1), ("audio", 1), ("text", 1), ("text", 1)]  # the subtitle renditions: one WebVTT file each
    assert [s.lang for s in period.adaptation_sets if s.content_type == "text"] == ["und", "de"]
    assert all(BCP47.match(s.lang) for s in period.adaptation_sets if s.lang)
    assert not mpd.base_urls and not period.base_urls

    assert _timings(tree / "hls" / "subs" / "de") == {"00:00:01.000 --> 00:00:02.500",
                                                      "00:00:03.000 --> 00:00:04.000"}
    assert len(_timings(tree / "hls" / "subs" / "und")) == 2  # the source's two cues (ffmpeg moves them 21 ms)


def _gets(services: pipeline.Services) -> list[dict]:
    """Every GetObject the pipeline's S3 client sends from now on (its key and Range)."""
    seen: list[dict] = []
    services.storage.client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: seen.append(dict(params)))
    return seen


def test_a_sidecar_caption_over_the_limit_fails_the_video_before_it_is_read(services, tmp_path, media):
    """A 6 MiB "caption" (the default limit is 5 MiB): `too_large` at probe, naming the file, before any encode,
    with no read of the file; a caption under the limit is read with a bounded request."""
    key = uuid.uuid4().hex[:6]
    source = upload(services, media["small"], f"uploads/{key}/talk.mp4")
    huge = tmp_path / "huge.srt"
    huge.write_bytes((SOURCE_SRT + "\n").encode() + b"x" * (6 * 1024 * 1024))
    caption = {"source": upload(services, huge, f"uploads/{key}/huge.en.srt"), "language": "en"}
    gets = _gets(services)
    job = pipeline.register({"source": source, "captions": [caption]}, "run-huge-captions", services)
    with pytest.raises(BadInput) as caught:
        pipeline.probe_source(services, job)
    assert caught.value.code == errors.TOO_LARGE
    assert caption["source"] in caught.value.message and "5 MiB" in caught.value.message, caught.value.message
    assert not [g for g in gets if g["Key"].endswith("huge.en.srt")]
    pipeline.record_failure(job.to_dict(), "probe", None, caught.value, 1, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.TOO_LARGE)


def test_a_caption_grown_past_the_limit_after_probe_is_never_read_whole(services, tmp_path, media):
    """The file passed at probe, then was replaced by a bigger one: publish never reads more than the limit and a
    byte (here nothing: its HEAD says), leaves it out with `invalid_captions`, and the video is still ready."""
    key = uuid.uuid4().hex[:6]
    source = upload(services, media["small"], f"uploads/{key}/talk.mp4")
    small = tmp_path / "small.srt"
    small.write_text(SOURCE_SRT)
    caption = {"source": upload(services, small, f"uploads/{key}/grown.en.srt"), "language": "en"}
    services.settings = dataclasses.replace(services.settings, caption_max_bytes=4096)
    job, probed, plan, items = pipeline.prepare({"source": source, "captions": [caption], "ladder": ["240p"]},
                                                "run-grown-captions", lambda step, job: None, services)
    grown = tmp_path / "grown.srt"
    grown.write_bytes((SOURCE_SRT + "\n").encode() + b"x" * 100_000)
    upload(services, grown, f"uploads/{key}/grown.en.srt")
    gets = _gets(services)
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items], results, services)
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    reads = [g for g in gets if g["Key"].endswith("grown.en.srt")]
    assert all(g.get("Range") == "bytes=0-4096" for g in reads), reads  # its HEAD said enough: none at all
    refused = [e["detail"] for e in services.catalog.get_events(job.video_id)
               if e["kind"] == "warning" and e["detail"].get("code") == "invalid_captions"]
    assert len(refused) == 1 and "4 KiB" in refused[0]["message"], refused


PAGE = """<!doctype html><meta charset="utf-8"><video id="player" muted playsinline></video>
<script src="static/hls.min.js"></script>
<script>
window.hls = new Hls();
window.hlsErrors = [];
hls.on(Hls.Events.MANIFEST_PARSED, () => { window.parsed = true; });
hls.on(Hls.Events.ERROR, (_e, d) => hlsErrors.push(`${d.type} ${d.details} ${d.reason || ""}`));
hls.loadSource("hls/master.m3u8");
hls.attachMedia(document.getElementById("player"));
</script>"""


@pytest.mark.skipif(not (BROWSER_DIR / "node_modules" / "playwright-core").exists() or not shutil.which("chromium"),
                    reason="needs `make browser` (playwright-core) and Debian's chromium")
def test_hlsjs_lists_exactly_the_real_tracks_of_a_hostile_master(services, tmp_path):
    """The bundled hls.js on the published hostile master: one level, the three audio tracks and two subtitle
    tracks with their escaped names, it plays, and the page asks nothing of any other host."""
    tree = _publish_hostile(services, tmp_path)
    (tree / "static").mkdir()
    shutil.copy(STATIC / "hls.min.js", tree / "static" / "hls.min.js")
    (tree / "index.html").write_text(PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tree))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    try:
        result = subprocess.run(["node", str(BROWSER_DIR / "tracks.mjs"), base + "index.html"],  # noqa: S603
                                cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert [level["url"] for level in findings["levels"]] == [base + "hls/240p/index.m3u8"]
    audio = [(t["name"], t["lang"], t["url"]) for t in findings["audio"]]
    assert audio[0] == ("English", "en", None) and audio[2] == ("English (2)", "en", base + "hls/audio/en/index.m3u8")
    assert audio[1][0].startswith("Dub 'evil', \uff03EXT-X-STREAM-INF") and audio[1][1:] == (
        "und", base + "hls/audio/und/index.m3u8")
    subtitles = [(t["lang"], t["url"]) for t in findings["subtitles"]]
    assert subtitles == [("und", base + "hls/subs/und/index.m3u8"), ("de", base + "hls/subs/de/index.m3u8")]
    assert findings["playing"]["err"] is None and findings["playing"]["t"] > 1.0
    assert findings["requests"] and all(url.removeprefix("blob:").startswith(base)  # blob: the MediaSource
                                        for url in findings["requests"]), findings["requests"]
