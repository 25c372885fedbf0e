"""The DASH MPD over the CMAF tracks: the same init and segment files as the fMP4 HLS tree. Pure: no I/O.

Static (VOD), one Period; video in one AdaptationSet (a Representation per rendition: codecs, measured bandwidth,
width/height, frameRate), audio in its own (a Representation per AAC bitrate). Each Representation addresses its
files with a ``SegmentTemplate`` (``$RepresentationID$/seg_$Number%05d$.m4s``) and an exact ``SegmentTimeline``
in its own timescale, from the fragments' decode times. ``presentationTimeOffset`` is the first picture's time on
the TS timeline (in each timescale), so the Period starts with the first frame and audio keeps its offset to it.
Written and read back with the ``mpegdash`` library (XML built by ``xml.dom.minidom``, which escapes attribute
values; nothing of the source's metadata but the audio language, a checked BCP 47 tag, goes into it).

Several codecs (issue 24): one video AdaptationSet per codec family and dynamic range (a player switches
seamlessly only within a set: one codec, one colour volume), in the order H.264, HEVC, AV1, each with its own
maxWidth/maxHeight and its Representations' exact ``@codecs``; the audio set is shared (its id stays 1, after the
H.264 set's 0, so an H.264-only MPD is written exactly as before). The sets carry ``@selectionPriority`` (AV1 3,
HEVC 2, H.264 1): of the sets a device decodes, a player (dash.js, Shaka) starts with the one that needs fewest bits
for the picture. An HDR set (PQ, HLG) carries its colour as ``EssentialProperty`` descriptors
``urn:mpeg:mpegB:cicp:ColourPrimaries`` / ``TransferCharacteristics`` / ``MatrixCoefficients`` (DASH-IF IOP's HDR
signalling; an EssentialProperty a client does not understand makes it skip the set: ISO/IEC 23009-1), so
an SDR-only device never picks it and plays the H.264 set, which, like every SDR set, carries none. dash.js 5 keeps
a BT.2020/PQ/HLG set only where the browser's Media Capabilities answer (transferFunction, colorGamut) says yes;
with SupplementalProperty instead, it started on an AV1 PQ set on an SDR screen (tests/integration/web).
"""

from __future__ import annotations

import math
from fractions import Fraction

from mpegdash.nodes import (
    MPEGDASH,
    AdaptationSet,
    BaseURL,
    Descriptor,
    Period,
    Representation,
    S,
    SegmentTemplate,
    SegmentTimeline,
)
from mpegdash.parser import MPEGDASHParser

from vodflow.media import escaping
from vodflow.media.measured import MeasuredSubtitles
from vodflow.media.package import cmaf_hls, hls
from vodflow.media.package.cmaf import CMAF_SEGMENT_PATTERN, INIT, CmafTrack

MPD = "manifest.mpd"
PROFILES = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
AUDIO_CHANNELS_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
CICP_SCHEMES = ("urn:mpeg:mpegB:cicp:ColourPrimaries", "urn:mpeg:mpegB:cicp:TransferCharacteristics",
                "urn:mpeg:mpegB:cicp:MatrixCoefficients")
# H.273 code points of a dynamic range when the track does not give its own: BT.2020 primaries and
# non-constant-luminance matrix, with the PQ (SMPTE ST 2084) or HLG (ARIB STD-B67) transfer.
HDR_COLOUR = {"PQ": (9, 16, 9), "HLG": (9, 18, 9)}
SELECTION_PRIORITY = {"h264": 1, "hevc": 2, "av1": 3}


def iso_duration(seconds: float) -> str:
    """xs:duration, to the millisecond: ``PT12.345S``."""
    return f"PT{seconds:.3f}S"


def timeline(track: CmafTrack) -> SegmentTimeline:
    """``S`` elements: the first with its time, equal consecutive durations folded into ``r``."""
    runs: list[S] = []
    for segment in track.segments:
        if runs and runs[-1].d == segment.ticks:
            runs[-1].r = (runs[-1].r or 0) + 1
            continue
        entry = S()
        entry.t = segment.start if not runs else None
        entry.d = segment.ticks
        runs.append(entry)
    node = SegmentTimeline()
    node.Ss = runs
    return node


def _template(track: CmafTrack, start_seconds: Fraction) -> SegmentTemplate:
    template = SegmentTemplate()
    template.timescale = track.timescale
    template.presentation_time_offset = math.floor(start_seconds * track.timescale)
    template.initialization = f"$RepresentationID$/{INIT}"
    template.media = "$RepresentationID$/" + CMAF_SEGMENT_PATTERN.replace("%05d", "$Number%05d$")
    template.start_number = 0
    template.segment_timelines = [timeline(track)]
    return template


def _representation(track: CmafTrack, target: int, start: Fraction) -> Representation:
    rep = Representation()
    rep.id = track.name
    rep.codecs = track.codec
    rep.bandwidth = hls.peak_bitrate(track.segments, target)
    rep.segment_templates = [_template(track, start)]
    if track.kind == "video":
        rep.width, rep.height = track.width, track.height
        rep.frame_rate = str(Fraction(track.frame_rate))
        rep.sar = "1:1"
    else:
        rep.audio_sampling_rate = str(track.sample_rate)
    return rep


def colour_descriptors(video: CmafTrack) -> list[Descriptor]:
    """The EssentialProperty descriptors of an HDR track's set (none for SDR)."""
    if video.video_range == "SDR":
        return []
    values = video.colour if len(video.colour) == 3 else HDR_COLOUR.get(video.video_range, ())
    out = []
    for scheme, value in zip(CICP_SCHEMES, values, strict=False):
        node = Descriptor()
        node.scheme_id_uri, node.value = scheme, str(int(value))
        out.append(node)
    return out


def video_groups(videos: list[CmafTrack]) -> list[list[CmafTrack]]:
    """The video tracks by AdaptationSet: one per (codec family, dynamic range, colour), H.264 first."""
    order = cmaf_hls.families(videos)
    groups: dict[tuple, list[CmafTrack]] = {}
    for v in videos:
        groups.setdefault((order.index(v.family), cmaf_hls.RANGE_ORDER.index(v.video_range)
                           if v.video_range in cmaf_hls.RANGE_ORDER else len(cmaf_hls.RANGE_ORDER),
                           v.video_range, tuple(v.colour)), []).append(v)
    return [groups[k] for k in sorted(groups)]


def _video_set(videos: list[CmafTrack], set_id: int, target: int, start: Fraction, several: bool
               ) -> AdaptationSet:
    video_set = AdaptationSet()
    video_set.id, video_set.content_type, video_set.mime_type = set_id, "video", "video/mp4"
    video_set.segment_alignment, video_set.start_with_sap = "true", 1
    video_set.max_width = max(v.width for v in videos)
    video_set.max_height = max(v.height for v in videos)
    video_set.par = _par(videos[0].width, videos[0].height)
    if several:
        video_set.selection_priority = SELECTION_PRIORITY.get(videos[0].family, 1)
    video_set.essential_properties = colour_descriptors(videos[0]) or None
    video_set.representations = [_representation(v, target, start)
                                 for v in sorted(videos, key=lambda v: hls.average_bitrate(v.segments))]
    return video_set


def text_set(index: int, subtitles: MeasuredSubtitles, url: str) -> AdaptationSet:
    """A WebVTT subtitle track as one file (``url``, relative to the MPD): role ``subtitle``, its language."""
    text = AdaptationSet()
    text.id, text.content_type, text.mime_type = index, "text", "text/vtt"
    text.lang = escaping.language_tag(subtitles.language)
    role = Descriptor()
    role.scheme_id_uri, role.value = "urn:mpeg:dash:role:2011", "subtitle"
    text.roles = [role]
    rep = Representation()
    rep.id, rep.bandwidth = f"subs-{subtitles.name}", 256
    base = BaseURL()
    base.base_url_value = url
    rep.base_urls = [base]
    text.representations = [rep]
    return text


def render_mpd(tracks: list[CmafTrack], duration: float, language: str = "und",
               subtitles: list[tuple[MeasuredSubtitles, str]] | None = None) -> str:
    """The MPD text. ``duration``: the presentation's (the video's) length in seconds; ``subtitles``: WebVTT
    tracks, each with the URL of its whole file (relative to the MPD)."""
    videos = [t for t in tracks if t.kind == "video"]
    audios = sorted((t for t in tracks if t.kind == "audio"), key=lambda t: hls.average_bitrate(t.segments))
    if not videos:
        raise ValueError("an MPD needs at least one video track")
    cmaf_hls.check_one_grid(tracks)
    target = hls.target_duration([s.duration for t in tracks for s in t.segments])
    groups = video_groups(videos)
    first = groups[0][0]
    start = Fraction(first.first_time, first.timescale)  # the first picture, on the TS timeline
    several = len(groups) > 1
    sets = [_video_set(groups[0], 0, target, start, several)]
    if audios:
        audio_set = AdaptationSet()
        audio_set.id, audio_set.content_type, audio_set.mime_type = 1, "audio", "audio/mp4"
        audio_set.segment_alignment, audio_set.start_with_sap = "true", 1
        audio_set.lang = escaping.language_tag(language)  # an xs:language (BCP 47), never free text
        audio_set.representations = [_representation(a, target, start) for a in audios]
        sets.append(audio_set)
    sets += [_video_set(group, index + 2, target, start, several) for index, group in enumerate(groups[1:])]
    sets += [text_set(len(sets) + i, s, url) for i, (s, url) in enumerate(subtitles or [])]
    period = Period()
    period.id, period.start, period.adaptation_sets = "0", "PT0S", sets
    mpd = MPEGDASH()
    mpd.xmlns = "urn:mpeg:dash:schema:mpd:2011"
    mpd.type, mpd.profiles = "static", PROFILES
    mpd.media_presentation_duration = iso_duration(duration)
    mpd.min_buffer_time = iso_duration(float(target))
    mpd.max_segment_duration = iso_duration(max(s.duration for t in tracks for s in t.segments))
    mpd.periods = [period]
    return '<?xml version="1.0" encoding="utf-8"?>\n' + MPEGDASHParser.get_as_doc(mpd).documentElement.toprettyxml(
        indent="  ")


def parse_mpd(text: str) -> MPEGDASH:
    return MPEGDASHParser.parse(text)


def _par(width: int, height: int) -> str:
    ratio = Fraction(width, height)
    return f"{ratio.numerator}:{ratio.denominator}"
