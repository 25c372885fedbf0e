"""Subtitle renditions as ``version_outputs`` rows: written by ``publish`` with the others, read by the CMAF output
(its master and MPD list them) and the API (which shows them, automatic ones with ``auto: true``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vodflow import layout
from vodflow.media.measured import MeasuredSubtitles
from vodflow.pipeline.outputs.base import OutputRecord

if TYPE_CHECKING:
    from vodflow.pipeline.services import Job

# version_outputs: one row per subtitle rendition (its media playlist), named by its folder under hls/subs/, with
# its BCP 47 language in ``codecs`` and its title in ``filename``; automatic captions are a kind of their own.
SUBTITLES_KIND = "subtitles"
AUTO_SUBTITLES_KIND = "auto_subtitles"


def subtitle_records(job: Job, subtitles: list[MeasuredSubtitles]) -> list[OutputRecord]:
    """Each subtitle rendition as an output record: what the CMAF master and the MPD list, and the API shows."""
    prefix = layout.hls_prefix(job.video_id, job.version)
    return [OutputRecord(kind=AUTO_SUBTITLES_KIND if s.auto else SUBTITLES_KIND, name=s.name,
                         key=prefix + s.playlist_uri, bytes=sum(seg.size for seg in s.segments),
                         content_type=layout.content_type(s.playlist_uri),
                         duration=round(sum(seg.duration for seg in s.segments), 3), codecs=s.language,
                         filename=s.title)
            for s in subtitles]


def subtitles_of(records: list[OutputRecord]) -> list[MeasuredSubtitles]:
    """The subtitle renditions ``subtitle_records`` described (without segments): for the CMAF master and MPD."""
    return [MeasuredSubtitles(name=r.name, language=r.codecs or "und", title=r.filename or r.name,
                              auto=r.kind == AUTO_SUBTITLES_KIND)
            for r in records if r.kind in (SUBTITLES_KIND, AUTO_SUBTITLES_KIND)]


def api_fields(listed: list[dict[str, Any]]) -> dict[str, Any]:
    """The API's view of a version's text tracks, from its listed outputs (each with its ``url``): every subtitle
    rendition (``auto: true`` for automatic captions) and the transcripts' URLs (None without them)."""
    subtitles = [{"name": o["filename"] or o["name"], "language": o["codecs"], "auto": o["kind"] == AUTO_SUBTITLES_KIND,
                  "playlist_url": o["url"]}
                 for o in listed if o["kind"] in (SUBTITLES_KIND, AUTO_SUBTITLES_KIND)]
    find = {o["name"]: o["url"] for o in listed if o["kind"] == "captions"}
    return {"subtitles": subtitles, "auto_captions_url": find.get("vtt"), "transcript_url": find.get("transcript_txt"),
            "transcript_json_url": find.get("transcript_json")}
