"""A CMAF tree made as the pipeline makes it, minus S3: the media and the browser tests share it."""

from __future__ import annotations

from pathlib import Path

from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.package import cmaf_hls, dash
from vodflow.media.package.cmaf import audio_from, package_rendition
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe


def cmaf_tree(path: Path, out: Path):
    """What the pipeline does, minus S3: the TS encode, each rendition remuxed, then the playlists and the MPD."""
    source = probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    renditions = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)
    measured = encode_renditions(str(path), str(out / "hls"), source, renditions, EncoderSettings())
    tracks = []
    for rendition, m in zip(renditions, measured, strict=True):
        tracks += package_rendition(m, str(out / "hls" / m.name), str(out / "cmaf"), 6,
                                    audio_from(renditions, rendition), audio=rendition.audio_kbps)
    _, files = cmaf_hls.render_playlists(tracks)
    files[dash.MPD] = dash.render_mpd(tracks, measured[0].duration)
    for name, text in files.items():
        (out / "cmaf" / name).write_text(text)
    return source, measured, tracks, out / "cmaf"
