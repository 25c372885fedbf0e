"""The fMP4 HLS tree over CMAF tracks: media and I-frame playlists with ``EXT-X-MAP``, and a multivariant playlist
measured like the TS one (``hls``): BANDWIDTH the RFC 8216 peak, AVERAGE-BANDWIDTH the mean, one target duration.
Pure: no I/O.

Audio is a track of its own (CMAF: one track per file), so each video variant names the audio group of its
rendition's AAC bitrate (``EXT-X-MEDIA TYPE=AUDIO``, the one rendition of its group, DEFAULT=YES) and its
bandwidths add that audio's (RFC 8216 4.3.4.2). The lowest-bitrate audio track is also an audio-only variant
(``CODECS="mp4a.40.2"``, no RESOLUTION), the lowest-bandwidth entry, so a player on a bad link keeps the sound.
"""

from __future__ import annotations

from typing import Any

import m3u8

from vodflow.media.measured import IFRAME_PLAYLIST, MEDIA_PLAYLIST, MeasuredSubtitles
from vodflow.media.package import hls
from vodflow.media.package.cmaf import INIT, CmafTrack
from vodflow.media.package.hls import MASTER_PLAYLIST


def playlist_uri(track: CmafTrack) -> str:
    return f"{track.name}/{MEDIA_PLAYLIST}"


def iframe_playlist_uri(track: CmafTrack) -> str:
    return f"{track.name}/{IFRAME_PLAYLIST}"


def cmaf_target(tracks: list[CmafTrack]) -> int:
    """One target duration for every playlist of the tree (Apple 8.2), video and audio."""
    return hls.target_duration([s.duration for t in tracks for s in t.segments])


def master_playlist(tracks: list[CmafTrack], target: int, language: str = "und", audio_name: str = "Main",
                    audio_only: bool = True, subtitles: list[MeasuredSubtitles] | None = None) -> str:
    """Multivariant playlist over the CMAF tracks (``language``/``audio_name``: the main audio track's);
    ``subtitles``: WebVTT renditions under ``subs/<name>/`` (group ``subs``, never DEFAULT, as the TS master's)."""
    videos = [t for t in tracks if t.kind == "video"]
    audios = {t.name: t for t in tracks if t.kind == "audio"}
    playlist = m3u8.M3U8()
    playlist.version = 6
    playlist.is_independent_segments = True
    groups = {name: hls.media_entry("AUDIO", name, playlist_uri(a), language, audio_name, default=True,
                                    channels=str(a.channels or 2))
              for name, a in audios.items()}
    captions = hls.subtitle_group(subtitles or [])
    for media in [*groups.values(), *captions]:
        playlist.add_media(media)
    stats = {}
    for video in videos:
        audio = audios.get(video.audio)
        stats[video.name] = hls.VariantStats(
            video.name, hls.peak_bitrate(video.segments, target) + (hls.peak_bitrate(audio.segments, target)
                                                                    if audio else 0),
            hls.average_bitrate(video.segments) + (hls.average_bitrate(audio.segments) if audio else 0))
    by_name = {v.name: v for v in videos}
    for name in hls.order_variants(list(stats.values())):
        video, stat = by_name[name], stats[name]
        audio = audios.get(video.audio)
        info: dict[str, Any] = {"bandwidth": stat.bandwidth, "average_bandwidth": stat.average_bandwidth,
                                "resolution": f"{video.width}x{video.height}",
                                "codecs": f"{video.codec},{audio.codec}" if audio else video.codec,
                                "frame_rate": hls.frame_rate_value(video.frame_rate)}
        if audio:
            info["audio"] = audio.name
        if captions:
            info["subtitles"] = hls.SUBTITLE_GROUP
        playlist.add_playlist(m3u8.Playlist(uri=playlist_uri(video), stream_info=info,
                                            media=([groups[audio.name]] if audio else []) + captions, base_uri=None))
    lowest = min(audios.values(), key=lambda a: hls.average_bitrate(a.segments), default=None)
    if audio_only and lowest is not None:
        playlist.add_playlist(m3u8.Playlist(uri=playlist_uri(lowest), base_uri=None, media=[], stream_info={
            "bandwidth": hls.peak_bitrate(lowest.segments, target),
            "average_bandwidth": hls.average_bitrate(lowest.segments), "codecs": lowest.codec}))
    for video in sorted(videos, key=lambda v: stats[v.name].bandwidth):
        if video.iframes:
            playlist.add_iframe_playlist(m3u8.IFramePlaylist(base_uri=None, uri=iframe_playlist_uri(video),
                                                             iframe_stream_info={
                "bandwidth": hls.iframe_peak_bitrate(video.iframes),
                "resolution": f"{video.width}x{video.height}", "codecs": video.codec}))
    return _newline(playlist.dumps())


def render_playlists(tracks: list[CmafTrack], language: str = "und", audio_name: str = "Main",
                     audio_only: bool = True, subtitles: list[MeasuredSubtitles] | None = None
                     ) -> tuple[int, dict[str, str]]:
    """(target duration, {path relative to the cmaf/ folder: playlist}) with master.m3u8 last."""
    target = cmaf_target(tracks)
    files: dict[str, str] = {}
    for track in tracks:
        files[playlist_uri(track)] = hls.media_playlist(track.segments, target, init=INIT)
        if track.iframes:
            files[iframe_playlist_uri(track)] = hls.iframe_playlist(track.iframes, target, init=INIT)
    for text in subtitles or []:
        files[text.playlist_uri] = hls.media_playlist(text.segments, target)
    files[MASTER_PLAYLIST] = master_playlist(tracks, target, language, audio_name, audio_only, subtitles)
    return target, files


def _newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
