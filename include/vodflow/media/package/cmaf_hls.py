"""The fMP4 HLS tree over CMAF tracks: media and I-frame playlists with ``EXT-X-MAP``, and a multivariant playlist
measured like the TS one (``hls``): BANDWIDTH the RFC 8216 peak, AVERAGE-BANDWIDTH the mean, one target duration.
Pure: no I/O.

Audio is a track of its own (CMAF: one track per file), so each video variant names the audio group of its
rendition's AAC bitrate (``EXT-X-MEDIA TYPE=AUDIO``, the one rendition of its group, DEFAULT=YES) and its
bandwidths add that audio's (RFC 8216 4.3.4.2). The lowest-bitrate audio track is also an audio-only variant
(``CODECS="mp4a.40.2"``, no RESOLUTION), the lowest-bandwidth entry, so a player on a bad link keeps the sound.

Several codecs (issue 24): one master lists every video track, each variant with its exact CODECS, and the audio
groups are shared by every codec. Variants are grouped by codec family, H.264 first (Apple's authoring spec keeps
H.264 variants for backward compatibility, and a player that takes the first variant or cannot parse CODECS must
land on the one every device decodes), then HEVC, then AV1, each family ascending by bandwidth; the first family
starts with its start variant (``hls.order_variants``). A player skips the variants whose CODECS it cannot decode
(hls.js, Shaka and AVPlayer all filter on CODECS), so the same master serves an H.264-only device and an AV1 one.
Every video variant and I-frame playlist then carries ``VIDEO-RANGE`` (SDR/PQ/HLG). A tree of H.264 alone is
written exactly as before (no VIDEO-RANGE: SDR is the default, RFC 8216bis 4.4.6.2). With more than one codec,
``master-<codec>.m3u8`` lists one codec's variants (and the audio) only: ``codec_masters`` names them. Every
codec must be on the H.264 ladder's segment grid (``check_one_grid``), or nothing is written.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import m3u8

from vodflow.errors import INTERNAL_ERROR, Permanent
from vodflow.media.measured import IFRAME_PLAYLIST, MEDIA_PLAYLIST, MeasuredSubtitles
from vodflow.media.package import hls
from vodflow.media.package.cmaf import INIT, CmafTrack
from vodflow.media.package.hls import MASTER_PLAYLIST

FAMILY_ORDER = ("h264", "hevc", "av1")  # the fallback first, then by how widely the codec is decoded
RANGE_ORDER = ("SDR", "HLG", "PQ")  # SDR first within a codec: HLG still looks right on an SDR screen, PQ not


def playlist_uri(track: CmafTrack) -> str:
    return f"{track.name}/{MEDIA_PLAYLIST}"


def iframe_playlist_uri(track: CmafTrack) -> str:
    return f"{track.name}/{IFRAME_PLAYLIST}"


def codec_master_name(family: str) -> str:
    return f"master-{family}.m3u8"


def cmaf_target(tracks: list[CmafTrack]) -> int:
    """One target duration for every playlist of the tree (Apple 8.2), video and audio."""
    return hls.target_duration([s.duration for t in tracks for s in t.segments])


def families(tracks: list[CmafTrack]) -> list[str]:
    """The video codec families of the tracks, in variant order (H.264 first; unknown ones last, by name)."""
    found = {t.family for t in tracks if t.kind == "video"}
    return sorted(found, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))


def codec_masters(tracks: list[CmafTrack]) -> dict[str, str]:
    """{codec family: its own master's path under cmaf/}, for a tree of more than one codec (else empty): what
    lets an operator play one codec's ladder."""
    names = families(tracks)
    return {f: codec_master_name(f) for f in names} if len(names) > 1 else {}


def signals_range(videos: list[CmafTrack]) -> bool:
    """VIDEO-RANGE is written once the tree has anything but H.264 SDR (an H.264-only master stays as it was)."""
    return any(v.family != "h264" or v.video_range != "SDR" for v in videos)


def check_one_grid(tracks: list[CmafTrack]) -> None:
    """Every codec's video tracks on the H.264 ladder's segment grid: as many segments, each starting within half a
    frame of the H.264 one (so a player switches codecs on a boundary and the shared audio stays in sync). A track
    made on another timeline is our bug, not the source's: ``Permanent`` (internal_error), never a broken master.
    A tree of one codec is not checked (its tracks are cut on the same TS boundaries)."""
    videos = [t for t in tracks if t.kind == "video"]
    if len(families(videos)) < 2:
        return
    reference = next(v for v in videos if v.family == families(videos)[0])
    starts = [Fraction(s.start, reference.timescale) for s in reference.segments]
    for video in videos:
        half_frame = Fraction(1, 2) / Fraction(video.frame_rate or reference.frame_rate or "25")
        own = [Fraction(s.start, video.timescale) for s in video.segments]
        if len(own) != len(starts) or any(abs(a - b) > half_frame for a, b in zip(own, starts, strict=True)):
            raise Permanent(INTERNAL_ERROR, f"video track {video.name} is not on the {reference.name} segment grid "
                            f"(starts {[round(float(t), 3) for t in own]} s against "
                            f"{[round(float(t), 3) for t in starts]} s)")


def _group_key(video: CmafTrack, order: list[str]) -> tuple[int, int]:
    rank = RANGE_ORDER.index(video.video_range) if video.video_range in RANGE_ORDER else len(RANGE_ORDER)
    return order.index(video.family), rank


def variant_order(videos: list[CmafTrack], stats: dict[str, hls.VariantStats]) -> list[str]:
    """Video variants grouped by (codec family, dynamic range); the first group led by its start variant, every
    other ascending by bandwidth."""
    order = families(videos)
    keys = sorted({_group_key(v, order) for v in videos})
    names: list[str] = []
    for index, key in enumerate(keys):
        group = [stats[v.name] for v in videos if _group_key(v, order) == key]
        names += (hls.order_variants(group) if index == 0
                  else [s.name for s in sorted(group, key=lambda s: s.bandwidth)])
    return names


def variant_stats(tracks: list[CmafTrack], target: int) -> dict[str, hls.VariantStats]:
    """Each video track's variant as the master measures it: BANDWIDTH and AVERAGE-BANDWIDTH of the track and
    the audio track it plays with (RFC 8216 4.3.4.2), by track name; what the catalog records too."""
    audios = {t.name: t for t in tracks if t.kind == "audio"}
    stats = {}
    for video in (t for t in tracks if t.kind == "video"):
        audio = audios.get(video.audio)
        stats[video.name] = hls.VariantStats(
            video.name, hls.peak_bitrate(video.segments, target) + (hls.peak_bitrate(audio.segments, target)
                                                                    if audio else 0),
            hls.average_bitrate(video.segments) + (hls.average_bitrate(audio.segments) if audio else 0))
    return stats


def master_playlist(tracks: list[CmafTrack], target: int, language: str = "und", audio_name: str = "Main",
                    audio_only: bool = True, subtitles: list[MeasuredSubtitles] | None = None,
                    video_range: bool | None = None) -> str:
    """Multivariant playlist over the CMAF tracks (``language``/``audio_name``: the main audio track's);
    ``subtitles``: WebVTT renditions under ``subs/<name>/`` (group ``subs``, never DEFAULT, as the TS master's);
    ``video_range``: write VIDEO-RANGE (default: ``signals_range`` of these tracks)."""
    videos = [t for t in tracks if t.kind == "video"]
    audios = {t.name: t for t in tracks if t.kind == "audio"}
    ranged = signals_range(videos) if video_range is None else video_range
    playlist = m3u8.M3U8()
    playlist.version = 6
    playlist.is_independent_segments = True
    groups = {name: hls.media_entry("AUDIO", name, playlist_uri(a), language, audio_name, default=True,
                                    channels=str(a.channels or 2))
              for name, a in audios.items()}
    captions = hls.subtitle_group(subtitles or [])
    for media in [*groups.values(), *captions]:
        playlist.add_media(media)
    stats = variant_stats(tracks, target)
    by_name = {v.name: v for v in videos}
    for name in variant_order(videos, stats):
        video, stat = by_name[name], stats[name]
        audio = audios.get(video.audio)
        info: dict[str, Any] = {"bandwidth": stat.bandwidth, "average_bandwidth": stat.average_bandwidth,
                                "resolution": f"{video.width}x{video.height}",
                                "codecs": f"{video.codec},{audio.codec}" if audio else video.codec,
                                "frame_rate": hls.frame_rate_value(video.frame_rate)}
        if ranged:
            info["video_range"] = video.video_range
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
    order = families(videos)
    for video in sorted(videos, key=lambda v: (_group_key(v, order), stats[v.name].bandwidth)):
        if video.iframes:
            iframe_info: dict[str, Any] = {"bandwidth": hls.iframe_peak_bitrate(video.iframes),
                                           "resolution": f"{video.width}x{video.height}", "codecs": video.codec}
            if ranged:
                iframe_info["video_range"] = video.video_range
            playlist.add_iframe_playlist(m3u8.IFramePlaylist(base_uri=None, uri=iframe_playlist_uri(video),
                                                             iframe_stream_info=iframe_info))
    return _newline(playlist.dumps())


def render_playlists(tracks: list[CmafTrack], language: str = "und", audio_name: str = "Main",
                     audio_only: bool = True, subtitles: list[MeasuredSubtitles] | None = None
                     ) -> tuple[int, dict[str, str]]:
    """(target duration, {path relative to the cmaf/ folder: playlist}) with master.m3u8 last; with more than one
    codec, each codec's own master (``codec_masters``) just before it."""
    check_one_grid(tracks)
    target = cmaf_target(tracks)
    files: dict[str, str] = {}
    for track in tracks:
        files[playlist_uri(track)] = hls.media_playlist(track.segments, target, init=INIT)
        if track.iframes:
            files[iframe_playlist_uri(track)] = hls.iframe_playlist(track.iframes, target, init=INIT)
    for text in subtitles or []:
        files[text.playlist_uri] = hls.media_playlist(text.segments, target)
    videos = [t for t in tracks if t.kind == "video"]
    ranged = signals_range(videos)
    for family, path in codec_masters(tracks).items():
        own = [v for v in videos if v.family == family]
        heard = {v.audio for v in own}
        files[path] = master_playlist([*own, *(t for t in tracks if t.kind == "audio" and t.name in heard)],
                                      target, language, audio_name, audio_only, subtitles, video_range=ranged)
    files[MASTER_PLAYLIST] = master_playlist(tracks, target, language, audio_name, audio_only, subtitles)
    return target, files


def _newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
