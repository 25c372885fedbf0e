"""The early tree's HLS playlists (issue 25): a multivariant playlist written once, and per track an EVENT media
playlist that only ever grows while the video is encoded. Pure: no I/O, no Airflow.

A player may fetch a playlist at any moment, so every rewrite must be the previous text plus lines (RFC 8216
6.2.1: an EVENT playlist may only have segments appended). What makes that hold: the text is a function of the
CONTIGUOUS prefix of segments from seq 0 (a segment that is up before an earlier one waits for the gap to fill),
the target duration is fixed up front instead of measured, and ``#EXT-X-ENDLIST`` comes last, once.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from vodflow.media import escaping

EVENT_VERSION = 6
PEAK_HEADROOM = 1.2  # BANDWIDTH from nominal rates: constrained VBR peaks above its average
AUDIO_GROUP = "aud"


@dataclass(frozen=True)
class EventVariant:
    """One rendition as the plan has it (nothing is measured yet)."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int
    fps: str  # fraction, e.g. "30000/1001"
    codecs: str | None = None  # RFC 6381, when known up front; None: left out (players probe)

    @property
    def uri(self) -> str:
        return f"{self.name}/index.m3u8"


@dataclass(frozen=True)
class EventEntry:
    seq: int
    uri: str  # as written in the playlist, relative to it
    duration: float


def tree_uri(uri: str) -> str:
    """A segment URI of an ``early/<track>/`` playlist: a relative path inside the version (the VOD's own segments
    are ``../../hls/<rendition>/seg_NNNNN.ts``); anything else is an error of ours, never written."""
    escaping.hls_uri(posixpath.basename(uri) or "/")  # one line, no quote
    inside = posixpath.normpath(posixpath.join("early/track", uri))
    if "://" in uri or uri.startswith("/") or inside.startswith("..") or any(c in uri for c in '"\r\n'):
        raise ValueError(f"refusing to write {uri!r} into a playlist: not a path inside the version")
    return uri


def event_target_duration(segment_seconds: float) -> int:
    """Fixed before the first segment: ours last at most ``segment_seconds`` + 0.5 (cut on the keyframe grid)."""
    return math.ceil(segment_seconds) + 1


def event_master(variants: Sequence[EventVariant], audio_uri: str | None = None) -> str:
    """The multivariant playlist, variants in the given order (the plan's, top first); ``audio_uri``: a demuxed
    audio track (a chunked run's), one ``EXT-X-MEDIA`` every variant names."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{EVENT_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio_uri:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="main",DEFAULT=YES,AUTOSELECT=YES,'
                     f'URI="{escaping.hls_uri(audio_uri)}"')
    for v in variants:
        nominal = (v.video_kbps + v.audio_kbps) * 1000
        attributes = [f"BANDWIDTH={math.ceil(nominal * PEAK_HEADROOM)}", f"AVERAGE-BANDWIDTH={nominal}",
                      f"RESOLUTION={v.width}x{v.height}", f"FRAME-RATE={float(Fraction(v.fps)):.3f}"]
        if v.codecs:
            attributes.append(f'CODECS="{v.codecs}"')
        if audio_uri:
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), escaping.hls_uri(v.uri)]
    return "\n".join(lines) + "\n"


def contiguous(entries: Iterable[EventEntry]) -> list[EventEntry]:
    """The entries seq 0, 1, 2… up to the first gap (duplicates of a seq: the first kept)."""
    by_seq: dict[int, EventEntry] = {}
    for entry in entries:
        by_seq.setdefault(entry.seq, entry)
    prefix = []
    while len(prefix) in by_seq:
        prefix.append(by_seq[len(prefix)])
    return prefix


def event_playlist(entries: Iterable[EventEntry], target: int, last_seq: int | None = None) -> tuple[str, int, bool]:
    """(text, segments listed, ended): the EVENT media playlist of the contiguous prefix of ``entries``, with
    ``#EXT-X-ENDLIST`` once ``last_seq`` is known and every segment up to it is listed."""
    prefix = contiguous(entries)
    if last_seq is not None:
        prefix = prefix[:last_seq + 1]
    ended = last_seq is not None and len(prefix) == last_seq + 1
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{EVENT_VERSION}", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for entry in prefix:
        lines += [f"#EXTINF:{entry.duration:.6f},", tree_uri(entry.uri)]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n", len(prefix), ended
