"""HLS playlists from measured renditions. Pure: no I/O, no Airflow.

We measure instead of trusting ffmpeg's own playlists (Apple HLS Authoring Spec 5.1): BANDWIDTH is the peak
segment bitrate per RFC 8216 (the highest bitrate over any run of contiguous segments lasting 0.5-1.5x the
target duration), AVERAGE-BANDWIDTH the mean over the whole rendition, and one target duration, rounded
half-up as RFC 8216 4.3.3.1 requires, is shared by every playlist (Apple 8.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

import m3u8

from vodflow.media import escaping
from vodflow.media.measured import IFrame, MeasuredAudio, MeasuredRendition, MeasuredSubtitles, Segment, _TrackRendition

MASTER_PLAYLIST = "master.m3u8"
# The variant a player should start with (Apple 9.x: the first listed variant is where playback starts):
# the best one whose peak still fits a modest connection.
START_VARIANT_MAX_BPS = 2_500_000
AUDIO_GROUP = "aud"
SUBTITLE_GROUP = "subs"


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def target_duration(durations: list[float]) -> int:
    """EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must not exceed it."""
    return max((round_half_up(d) for d in durations), default=1) or 1


def average_bitrate(segments: list[Segment]) -> int:
    total = sum(s.duration for s in segments)
    return round(sum(s.size for s in segments) * 8 / total) if total > 0 else 0


def peak_bitrate(segments: list[Segment], target: int) -> int:
    """RFC 8216 4.3.4.2 peak: the highest bitrate of any contiguous run lasting 0.5-1.5x the target duration."""
    best = 0.0
    low, high = 0.5 * target, 1.5 * target
    for start in range(len(segments)):
        size = duration = 0.0
        for seg in segments[start:]:
            size += seg.size
            duration += seg.duration
            if duration > high + 1e-9:
                break
            if duration >= low - 1e-9:
                best = max(best, size * 8 / duration)
    if best == 0.0:  # everything shorter than half a target: the whole thing is the only sensible window
        return average_bitrate(segments)
    return math.ceil(best)


def media_playlist(segments: list[Segment], target: int, init: str | None = None) -> str:
    """A VOD media playlist; ``init``: fMP4 segments with that initialization section (EXT-X-MAP, version 6)."""
    playlist = m3u8.M3U8()
    playlist.version = 6 if init else 3
    playlist.target_duration = target
    playlist.media_sequence = 0
    playlist.playlist_type = "vod"
    playlist.is_independent_segments = True
    playlist.is_endlist = True
    for number, seg in enumerate(segments):
        playlist.segments.append(m3u8.Segment(uri=seg.uri, duration=round(seg.duration, 6),
                                              init_section=_init_section(init, number)))
    return _with_trailing_newline(playlist.dumps())


def iframe_playlist(iframes: list[IFrame], target: int, init: str | None = None) -> str:
    playlist = m3u8.M3U8()
    playlist.version = 5 if init else 4  # EXT-X-I-FRAMES-ONLY and EXT-X-BYTERANGE; EXT-X-MAP in one (5)
    playlist.target_duration = target
    playlist.media_sequence = 0
    playlist.playlist_type = "vod"
    playlist.is_independent_segments = True
    playlist.is_i_frames_only = True
    playlist.is_endlist = True
    for number, frame in enumerate(iframes):
        playlist.segments.append(
            m3u8.Segment(uri=frame.uri, duration=round(frame.duration, 6), byterange=f"{frame.length}@{frame.offset}",
                         init_section=_init_section(init, number))
        )
    return _with_trailing_newline(playlist.dumps())


def _init_section(init: str | None, number: int) -> dict[str, str] | None:
    """EXT-X-MAP once, before the first segment: every segment of the playlist shares it."""
    return {"uri": init} if init and number == 0 else None


def iframe_peak_bitrate(iframes: list[IFrame]) -> int:
    return math.ceil(max((f.length * 8 / f.duration for f in iframes if f.duration > 0), default=0))


def frame_rate_value(fraction: str) -> float:
    return round(float(Fraction(fraction)), 3)


@dataclass(frozen=True)
class VariantStats:
    name: str
    bandwidth: int
    average_bandwidth: int


def variant_stats(rendition: MeasuredRendition, target: int) -> VariantStats:
    return VariantStats(rendition.name, peak_bitrate(rendition.segments, target), average_bitrate(rendition.segments))


def order_variants(stats: list[VariantStats]) -> list[str]:
    """Start variant first, the rest by ascending bandwidth."""
    ascending = sorted(stats, key=lambda s: s.bandwidth)
    fitting = [s for s in ascending if s.bandwidth <= START_VARIANT_MAX_BPS]
    start = fitting[-1] if fitting else ascending[0]
    return [start.name] + [s.name for s in ascending if s.name != start.name]


def media_entry(kind: str, group: str, uri: str | None, language: str, name: str, default: bool,
                **extra: str) -> m3u8.Media:
    """One ``EXT-X-MEDIA`` tag, every attribute that came from a file or a request escaped for HLS
    (``escaping``): m3u8 writes quoted-strings as they are, so this is the one way our playlists make them."""
    return m3u8.Media(uri=None if uri is None else escaping.hls_uri(uri), type=kind, group_id=group,
                      language=escaping.hls_language(language), name=escaping.hls_name(name),
                      default="YES" if default else "NO", autoselect="YES", **extra)


Track = TypeVar("Track", bound=_TrackRendition)


def _named(tracks: list[Track]) -> list[tuple[Track, str]]:
    """Each track with its NAME: escaped, then made unique in the group (RFC 8216 4.3.4.1)."""
    return list(zip(tracks, escaping.unique_display_names(escaping.hls_name(t.title) for t in tracks), strict=True))


def audio_group(audio: list[MeasuredAudio]) -> list[m3u8.Media]:
    """``EXT-X-MEDIA TYPE=AUDIO`` for each audio rendition; the main one (in the variants) is the default."""
    return [media_entry("AUDIO", AUDIO_GROUP, None if a.in_variants else a.playlist_uri, a.language, name,
                        default=a.in_variants)
            for a, name in _named(sorted(audio, key=lambda a: not a.in_variants))]


def subtitle_group(subtitles: list[MeasuredSubtitles]) -> list[m3u8.Media]:
    """``EXT-X-MEDIA TYPE=SUBTITLES`` for each subtitle rendition: offered, never forced on."""
    return [media_entry("SUBTITLES", SUBTITLE_GROUP, s.playlist_uri, s.language, name, default=False)
            for s, name in _named(subtitles)]


def master_playlist(renditions: list[MeasuredRendition], target: int, audio: list[MeasuredAudio] | None = None,
                    subtitles: list[MeasuredSubtitles] | None = None) -> str:
    """Multivariant playlist; every variant has measured BANDWIDTH/AVERAGE-BANDWIDTH, CODECS, RESOLUTION, FRAME-RATE.

    With alternate audio, every variant names the one audio group, and its bandwidths add the costliest alternate
    track's (RFC 8216 4.3.4.2: the largest sum over every playable combination)."""
    by_name = {r.name: r for r in renditions}
    stats = {r.name: variant_stats(r, target) for r in renditions}
    alternates = [a for a in audio or [] if not a.in_variants]
    extra_peak = max((peak_bitrate(a.segments, target) for a in alternates), default=0)
    extra_average = max((average_bitrate(a.segments) for a in alternates), default=0)
    playlist = m3u8.M3U8()
    playlist.version = 4 if any(r.iframes for r in renditions) else 3
    playlist.is_independent_segments = True
    group = audio_group(audio) if alternates else []
    captions = subtitle_group(subtitles or [])
    for media in group + captions:
        playlist.add_media(media)
    for name in order_variants(list(stats.values())):
        rendition, stat = by_name[name], stats[name]
        stream_info: dict[str, Any] = {
            "bandwidth": stat.bandwidth + extra_peak,
            "average_bandwidth": stat.average_bandwidth + extra_average,
            "resolution": f"{rendition.width}x{rendition.height}",
            "codecs": rendition.codecs,
            "frame_rate": frame_rate_value(rendition.frame_rate),
        }
        if group:
            stream_info["audio"] = AUDIO_GROUP
        if captions:
            stream_info["subtitles"] = SUBTITLE_GROUP
        playlist.add_playlist(m3u8.Playlist(uri=escaping.hls_uri(rendition.playlist_uri), stream_info=stream_info,
                                            media=group + captions, base_uri=None))
    for rendition in sorted(renditions, key=lambda r: stats[r.name].bandwidth):
        if not rendition.iframes:
            continue
        playlist.add_iframe_playlist(
            m3u8.IFramePlaylist(
                base_uri=None,
                uri=escaping.hls_uri(rendition.iframe_playlist_uri),
                iframe_stream_info={
                    "bandwidth": iframe_peak_bitrate(rendition.iframes),
                    "resolution": f"{rendition.width}x{rendition.height}",
                    "codecs": rendition.video_codec,
                },
            )
        )
    return _with_trailing_newline(playlist.dumps())


def render_playlists(renditions: list[MeasuredRendition], audio: list[MeasuredAudio] | None = None,
                     subtitles: list[MeasuredSubtitles] | None = None) -> tuple[int, dict[str, str]]:
    """(target duration, {path relative to the hls/ folder: playlist text}) with master.m3u8 last."""
    alternates = [a for a in audio or [] if not a.in_variants]
    target = target_duration([s.duration for r in renditions for s in r.segments]
                             + [s.duration for a in alternates for s in a.segments])
    files: dict[str, str] = {}
    for rendition in renditions:
        files[rendition.playlist_uri] = media_playlist(rendition.segments, target)
        files[rendition.iframe_playlist_uri] = iframe_playlist(rendition.iframes, target)
    for track in [*alternates, *(subtitles or [])]:
        files[track.playlist_uri] = media_playlist(track.segments, target)
    files[MASTER_PLAYLIST] = master_playlist(renditions, target, audio, subtitles)
    return target, files


def _with_trailing_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
