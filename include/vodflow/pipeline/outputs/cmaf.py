"""``cmaf`` output, the pipeline adapter of ``media.package.cmaf`` (S3 and catalog around its packaging): fMP4 HLS
and DASH from one set of CMAF segments under ``cmaf/``, remuxed from the local encode.

Per rendition (``encoded``): its TS segments are copied into a CMAF video track, and the first rendition of each
AAC bitrate also gives that audio track; each other codec's rendition (``codec_encoded``), encoded straight to
fragmented MP4 beside the H.264 ladder, is cut on the top H.264 rendition's segment grid into its track (played
with the AAC track of its rung's bitrate); the files and the track's measurement (``track.json``, what the
playlists and the MPD are written from, since ``publish`` may run on another machine) are uploaded.
At publish: every media playlist, the MPD, then the fMP4 multivariant playlist last; records ``mpd`` and
``master`` (what the API calls ``dash_url`` and ``cmaf_master_url``).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import m3u8

from vodflow import layout
from vodflow.catalog import VariantRecord
from vodflow.codec import decode, encode
from vodflow.media.encode.ladder import Rendition
from vodflow.media.measured import MEDIA_PLAYLIST, MeasuredRendition, MeasuredSubtitles, Segment
from vodflow.media.package import cmaf_hls, dash
from vodflow.media.package.cmaf import CmafTrack, audio_from, audio_track_name, codec_track, package_rendition
from vodflow.media.package.hls import MASTER_PLAYLIST
from vodflow.media.package.text_tracks import whole_vtt
from vodflow.pipeline.outputs.base import EncodedRendition, OutputContext, OutputFile, OutputHandler, OutputRecord
from vodflow.pipeline.outputs.subtitle_records import subtitles_of

if TYPE_CHECKING:
    from vodflow.pipeline.plan import EncodePlan
    from vodflow.pipeline.services import Job, Services

CMAF_DIR = "cmaf/"
TRACK_FILE = "track.json"


def track_names(plan: EncodePlan) -> list[str]:
    """Every track a plan's CMAF tree has: a video track per rendition of every codec (H.264's first), an audio
    track per AAC bitrate."""
    return [*plan.all_names, *(audio_track_name(kbps) for kbps in plan.audio_bitrates)]


class Cmaf(OutputHandler):
    kind = "cmaf"

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        tracks = package_rendition(encoded.measured, encoded.directory, ctx.workdir,
                                   ctx.settings.encoder.segment_seconds,
                                   audio_from(list(ctx.plan.renditions), encoded.rendition),
                                   audio=encoded.rendition.audio_kbps)
        return self._files(ctx, tracks)

    def codec_encoded(self, ctx: OutputContext, rendition: Rendition, path: str, grid: MeasuredRendition
                      ) -> tuple[CmafTrack, list[OutputFile]]:
        """An other codec's rendition, encoded as one fragmented MP4 (``path``: the whole video's encode, or a
        chunked one's joined pieces), as a CMAF track cut on ``grid`` (the top H.264 rendition as measured):
        uploaded under ``cmaf/<name>/`` with its ``track.json``, like the H.264 tracks."""
        folder = os.path.join(ctx.workdir, rendition.name)
        os.makedirs(folder, exist_ok=True)
        track = codec_track(path, folder, rendition, grid)
        track.audio = audio_track_name(rendition.audio_kbps) if rendition.audio_kbps else ""
        return track, self._files(ctx, [track])

    def _files(self, ctx: OutputContext, tracks: list[CmafTrack]) -> list[OutputFile]:
        """Each track's files and its measurement (``track.json``: publish writes the playlists from it)."""
        files = []
        for track in tracks:
            folder = os.path.join(ctx.workdir, track.name)
            with open(os.path.join(folder, TRACK_FILE), "w") as f:
                json.dump(encode(track), f)
            files += [OutputFile(kind=self.kind, name=f"{track.name}/{name}", path=os.path.join(folder, name),
                                 key=f"{CMAF_DIR}{track.name}/{name}", listed=False)
                      for name in sorted(os.listdir(folder))]
        return files

    def publish(self, services: Services, job: Job, plan: EncodePlan, renditions: list[MeasuredRendition],
                records: list[OutputRecord]) -> list[OutputRecord]:
        prefix = layout.version_prefix(job.video_id, job.version) + CMAF_DIR
        tracks = [decode(CmafTrack, json.loads(services.storage.get_bytes(f"{prefix}{name}/{TRACK_FILE}")))
                  for name in track_names(plan)]
        texts = _text_tracks(services, job, prefix, subtitles_of(records))
        _, playlists = cmaf_hls.render_playlists(tracks, subtitles=[t for t, _ in texts])
        master = playlists.pop(MASTER_PLAYLIST)
        mpd = dash.render_mpd(tracks, renditions[0].duration, subtitles=texts)
        for name, text in [*playlists.items(), (dash.MPD, mpd)]:
            services.storage.put_text(prefix + name, text)
        services.storage.put_text(prefix + MASTER_PLAYLIST, master)  # last, as the TS tree's
        record_codec_variants(services, job, plan, tracks, prefix)
        media_bytes = sum(t.bytes for t in tracks)
        top = next(t for t in tracks if t.name == plan.names[0])
        codecs = f"{top.codec},{next(t.codec for t in tracks if t.name == top.audio)}" if top.audio else top.codec
        return [*(OutputRecord(kind=self.kind, name=name, key=prefix + key, bytes=media_bytes,
                               content_type=layout.content_type(key), duration=round(renditions[0].duration, 3),
                               codecs=codecs)
                  for name, key in (("mpd", dash.MPD), ("master", MASTER_PLAYLIST))),
                *codec_master_records(tracks, prefix, round(renditions[0].duration, 3))]


def record_codec_variants(services: Services, job: Job, plan: EncodePlan, tracks: list[CmafTrack], prefix: str
                          ) -> None:
    """The other codecs' renditions' measured BANDWIDTH / AVERAGE-BANDWIDTH (as the CMAF master lists them) and
    media playlists in the catalog, as the TS tree's H.264 renditions have theirs."""
    others = {r.name for r in plan.cmaf_renditions}
    if not others:
        return
    stats = cmaf_hls.variant_stats(tracks, cmaf_hls.cmaf_target(tracks))
    services.catalog.record_variants(job.video_id, job.version, [
        VariantRecord(name, stat.bandwidth, stat.average_bandwidth, services.s3_uri(f"{prefix}{name}/{MEDIA_PLAYLIST}"))
        for name, stat in stats.items() if name in others])


def codec_master_records(tracks: list[CmafTrack], prefix: str, duration: float) -> list[OutputRecord]:
    """Each codec's own master (``master-<codec>``, a tree of more than one codec) as an output: what the API lists
    as ``cmaf_master_urls``; its bytes are that codec's video tracks' (the same container for every codec, the
    shared audio left out), so the saving against H.264 is like for like; its codecs, its top track's."""
    records = []
    for family, path in cmaf_hls.codec_masters(tracks).items():
        own = [t for t in tracks if t.kind == "video" and t.family == family]
        records.append(OutputRecord(kind=Cmaf.kind, name=f"master-{family}", key=prefix + path,
                                    bytes=sum(t.bytes for t in own), content_type=layout.content_type(path),
                                    duration=duration, codecs=max(own, key=lambda t: t.width * t.height).codec))
    return records


def _text_tracks(services: Services, job: Job, prefix: str, subtitles: list[MeasuredSubtitles]
                 ) -> list[tuple[MeasuredSubtitles, str]]:
    """Each subtitle rendition of the TS tree in this tree too (``subs/<name>/``: its WebVTT segments copied, for
    the fMP4 master) and as one whole file (``subs/<name>.vtt``, for the MPD); with that file's URL."""
    hls_prefix = layout.hls_prefix(job.video_id, job.version)
    found = []
    for track in subtitles:
        playlist = m3u8.loads(services.storage.get_bytes(hls_prefix + track.playlist_uri).decode("utf-8"))
        segments, texts = [], []
        for segment in playlist.segments:
            key = f"{hls_prefix}subs/{track.name}/{segment.uri}"
            texts.append(services.storage.get_bytes(key).decode("utf-8"))
            services.storage.copy_key(key, f"{prefix}subs/{track.name}/{segment.uri}")
            segments.append(Segment(segment.uri, float(segment.duration), len(texts[-1].encode("utf-8"))))
        whole = f"subs/{track.name}.vtt"
        services.storage.put_text(prefix + whole, whole_vtt(texts))
        found.append((replace(track, segments=segments), whole))
    return found
