"""Subtitle renditions, made in ``publish`` once the video's segments are known: the source's text tracks (WebVTT
parked by the encode) and the request's sidecar caption files (SRT or WebVTT in S3), each parsed, segmented on
the first variant's segments (X-TIMESTAMP-MAP tied to its first PTS) and uploaded under ``hls/subs/<lang>/``.

Captions are never a reason to withhold a video: a file that cannot be read is left out, with an event naming
the error code (``invalid_captions``) and the line where it goes wrong. Except its size: a sidecar file is named
by the request and may be any object, so one over ``caption_max_bytes`` fails the run at probe
(``check_caption_sizes``, from its HEAD, before anything is encoded), and ``publish`` reads at most that much.
Names and languages go through the track model's ``track_title`` and ``language_tag``, as the source's do.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from vodflow import errors, layout
from vodflow.errors import BadInput
from vodflow.layout import S3Location, parse_source_uri
from vodflow.media.measured import MeasuredRendition, MeasuredSubtitles, Segment
from vodflow.media.package.webvtt import CaptionError, Cue, parse_captions, segment_cues
from vodflow.media.source.tracks import LANGUAGE_NAMES, language_tag, track_title, unique_names
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)
INVALID_CAPTIONS = "invalid_captions"


def publish_subtitles(services: Services, job: Job, renditions: list[MeasuredRendition],
                      embedded: list[dict[str, Any]], auto: list[dict[str, Any]] | None = None
                      ) -> list[MeasuredSubtitles]:
    """Every subtitle rendition of the video, uploaded; the media playlists are written with the others. ``auto``:
    automatic captions (``pipeline.auto_captions``), parked like the source's tracks, listed after every other."""
    sources: list[tuple[str, str, S3Location, str]] = []  # (language, title, where, what to call it in errors)
    for track in embedded:
        language = language_tag(track["language"])
        title = track_title(track["title"], LANGUAGE_NAMES.get(language, "Subtitles"))
        sources.append((language, title, S3Location(services.storage.bucket, track["key"]),
                        f"subtitle track {title!r}"))
    for caption in job.captions or []:
        language = language_tag(caption["language"])
        sources.append((language, track_title(caption.get("name"), LANGUAGE_NAMES.get(language.split("-")[0],
                                                                                        language)),
                        parse_source_uri(caption["source"]), caption["source"]))
    automatic = set()
    for track in auto or []:
        automatic.add(len(sources))
        sources.append((language_tag(track["language"]), track_title(track["title"], "Auto-generated"),
                        S3Location(services.storage.bucket, track["key"]), "automatic captions"))
    if not sources or not renditions:
        return []
    reference = renditions[0]
    durations = [s.duration for s in reference.segments]
    parsed: list[tuple[str, str, list[Cue], bool]] = []
    for number, (language, title, where, label) in enumerate(sources):
        try:
            parsed.append((language, title, parse_captions(_read(services, where)), number in automatic))
        except CaptionError as exc:
            log.warning("Captions %s refused: %s", label, exc)
            services.catalog.add_event(job.video_id, "warning", code=INVALID_CAPTIONS, source=label, line=exc.line,
                                       message=f"Captions {label} were left out: line {exc.line}: {exc.message}.")
    prefix = layout.hls_prefix(job.video_id, job.version)
    published = []
    for name, (language, title, cues, is_auto) in zip(unique_names([p[0] for p in parsed]), parsed, strict=True):
        segments = []
        for index, document in enumerate(segment_cues(cues, durations, reference.first_pts)):
            uri = f"seg_{index:05d}.vtt"
            services.storage.put_text(f"{prefix}subs/{name}/{uri}", document)
            segments.append(Segment(uri=uri, duration=durations[index], size=len(document.encode("utf-8"))))
        published.append(MeasuredSubtitles(name=name, language=language, title=title, segments=segments,
                                           auto=is_auto))
    if published:
        services.catalog.add_event(job.video_id, "subtitles", tracks=[
            {"name": s.title, "language": s.language, **({"auto": True} if s.auto else {})} for s in published])
    return published


def check_caption_sizes(services: Services, captions: list[dict[str, str]] | None) -> None:
    """BadInput (``too_large``) for a sidecar caption file over ``caption_max_bytes``, from its HEAD alone: a
    caption can name any object, and WebVTT or SRT for a 3 h film is under 1 MiB. A missing or unreadable file is
    not refused here: ``publish`` leaves it out and says why, as for any caption it cannot read."""
    limit = services.settings.caption_max_bytes
    for caption in captions or []:
        where = parse_source_uri(caption["source"])
        try:
            size = services.storage.head(where).size
        except (BadInput, ClientError):
            continue
        if size > limit:
            raise BadInput(errors.TOO_LARGE, f"The caption file {where.uri} is {_size(size)}; caption files may "
                                             f"be at most {_size(limit)} (setting caption_max_bytes).")


def _size(count: int) -> str:
    unit, name = next(((u, n) for u, n in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")) if count >= u),
                      (1, "bytes"))
    return f"{count / unit:.1f}".removesuffix(".0") + f" {name}"


def _read(services: Services, where: S3Location) -> str:
    """A caption file's text (UTF-8, a BOM allowed), read with a bound (``caption_max_bytes`` and one byte: the
    file may have grown since probe); a missing, oversized or undecodable file is a CaptionError."""
    limit = services.settings.caption_max_bytes
    try:
        size = services.storage.head(where).size
        if size > limit:
            raise CaptionError(1, f"the file is {_size(size)}; caption files may be at most {_size(limit)}")
        data = services.storage.read_head(where, limit + 1) if size else b""
    except BadInput as exc:
        raise CaptionError(1, "the file cannot be read from S3 (it does not exist)") from exc
    except ClientError as exc:
        raise CaptionError(1, f"the file cannot be read from S3 ({exc.response['Error'].get('Code')})") from exc
    if len(data) > limit:
        raise CaptionError(1, f"the file is over {_size(limit)}, the most a caption file may be")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CaptionError(line, "the file is not UTF-8 text") from exc
