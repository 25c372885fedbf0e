"""Automatic captions, a work item beside the encode: the main audio track decoded to 16 kHz mono, its speech
recognised (``media.speech``), cut into readable cues; the WebVTT is parked for ``publish`` (which segments it
into a subtitle rendition like the source's own captions), the transcripts and the whole WebVTT go under the
version (``captions/``).

Never a reason to withhold a video: no model, an unreadable track or a recogniser error leaves the video without
automatic captions and an ``auto_captions`` event saying why; silence or music gives no cues ("no speech found").
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vodflow import layout
from vodflow.media.escaping import language_tag
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.tracks import LANGUAGE_NAMES
from vodflow.media.speech.cues import build_cues, render_vtt, transcript_json, transcript_text
from vodflow.media.speech.listen import decode_speech
from vodflow.media.speech.recognise import Recogniser, english_only, model_problem, recognise, resolve_model
from vodflow.pipeline.outputs.base import OutputRecord
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.scratch import work_dir
from vodflow.pipeline.services import Job, Services
from vodflow.pipeline.work import Captions, CaptionsResult
from vodflow.request import RequestError

log = logging.getLogger(__name__)
EVENT = "auto_captions"
CAPTIONS_DIR = "captions/"
TRANSCRIPT_TXT = "transcript.txt"
TRANSCRIPT_JSON = "transcript.json"
NO_SPEECH = "no speech found"
OUTPUT_KIND = "captions"  # version_outputs: captions/vtt, captions/transcript_txt, captions/transcript_json


def requested(conf: Mapping[str, Any], default: bool) -> Captions | None:
    """The conf's ``auto_captions`` (true, false, or {"language": …}; absent or null: the setting) as the item."""
    value = conf.get("auto_captions")
    if value is None:
        value = default
    if value is False:
        return None
    language = value.get("language") if isinstance(value, Mapping) else None
    return Captions(language=language or None)


def check_model(conf: Mapping[str, Any], setting_model: str, default: bool) -> None:
    """RequestError (a 400 at trigger) when a run asks for captions this installation cannot make: no model, or a
    language an English-only model cannot hear. Files only: no model is loaded by the API server."""
    item = requested(conf, default)
    if item is None or conf.get("auto_captions") is None:  # the setting's default is never the request's fault
        return
    path = resolve_model(setting_model)
    problem = model_problem(path)
    if problem:
        raise RequestError("auto_captions", f"auto_captions: {problem}")
    if item.language and item.language != "en" and english_only(path):
        raise RequestError("auto_captions", f"auto_captions: language {item.language!r}: the installed speech "
                                            "model recognises English only")


def track_title(language: str) -> str:
    """What a player's menu shows, e.g. "English (auto-generated)"."""
    return f"{LANGUAGE_NAMES.get(language.split('-')[0], language)} (auto-generated)"


def recognise_captions(services: Services, job: Job, probed: SourceInfo, plan: EncodePlan,
                       item: Captions) -> CaptionsResult:
    """The item's handler (``transcode.HANDLERS``): every failure becomes a result without captions and an event."""
    started = time.monotonic()
    path = resolve_model(services.settings.captions_model)
    problem = model_problem(path)
    if problem:
        return _without(services, job, problem)
    workdir = work_dir(services.scratch(job), "captions")
    try:
        from vodflow.pipeline.transcode import confirmed  # the encode's own read: a presigned URL, then a copy

        pcm = str(workdir / "speech.pcm")
        timeout = services.settings.encoder.timeout_for(probed.duration)
        confirmed(services, job, probed, lambda src: decode_speech(src, pcm, probed, timeout))
        decoded = time.monotonic()
        threads = services.settings.encoder.threads
        transcript = recognise(pcm, Recogniser(model=path, language=item.language, threads=threads))
        recognised = time.monotonic()
        cues = build_cues(transcript)
        timing = {"decode_seconds": round(decoded - started, 2), "recognise_seconds": round(recognised - decoded, 2),
                  "speech_seconds": transcript.speech_seconds, "audio_seconds": transcript.duration}
        if not cues:
            return _without(services, job, NO_SPEECH, **timing)
        language = language_tag(transcript.language)
        result = _upload(services, job, workdir, language, render_vtt(cues), transcript)
        services.catalog.add_event(job.video_id, EVENT, status="done", language=language, cues=len(cues),
                                   model=transcript.model, **timing)
        log.info("Automatic captions: %d cues (%s) from %.1f s of speech in %.1f s", len(cues), language,
                 transcript.speech_seconds, recognised - decoded)
        return CaptionsResult(language=language, vtt=result[0], outputs=result[1], cues=len(cues))
    except Exception as exc:  # captions are never a reason to withhold the video
        log.exception("Automatic captions failed")
        return _without(services, job, f"speech recognition failed: {type(exc).__name__}: {exc}"[:500])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _upload(services: Services, job: Job, workdir: Path, language: str, vtt: str,
            transcript: Any) -> tuple[str, tuple[OutputRecord, ...]]:
    """The WebVTT parked for ``publish``; the whole WebVTT and both transcripts under the version."""
    parked_path = workdir / f"auto-{language}.vtt"
    parked_path.write_text(vtt, encoding="utf-8")
    parked = services.park(job, {"vtt": str(parked_path)})["vtt"]
    prefix = layout.version_prefix(job.video_id, job.version) + CAPTIONS_DIR
    records = []
    for name, key, text in (("vtt", f"auto.{language}.vtt", vtt),
                            ("transcript_txt", TRANSCRIPT_TXT, transcript_text(transcript)),
                            ("transcript_json", TRANSCRIPT_JSON, transcript_json(transcript))):
        services.storage.put_text(prefix + key, text)
        records.append(OutputRecord(kind=OUTPUT_KIND, name=name, key=prefix + key, bytes=len(text.encode()),
                                    content_type=layout.content_type(key), duration=transcript.duration))
    return parked, tuple(records)


def _without(services: Services, job: Job, reason: str, **detail: Any) -> CaptionsResult:
    """No captions, and an event saying why (best effort: the event is not worth failing the item for)."""
    log.warning("No automatic captions for %s: %s", job.video_id, reason)
    try:
        services.catalog.add_event(job.video_id, EVENT, status="none", reason=reason,
                                   message=f"No automatic captions: {reason}.", **detail)
    except Exception:
        log.exception("Could not record why there are no automatic captions")
    return CaptionsResult(reason=reason)


def captions_failed(job_data: dict[str, Any] | None, exception: BaseException | None,
                    services: Services | None = None) -> None:
    """The captions task failed for good (killed, timed out): the video is published without them, and says why."""
    if job_data:
        _without(services or Services.load(), Job.from_dict(job_data),
                 f"the captions task failed: {type(exception).__name__ if exception else 'stopped'}")


def auto_tracks(results: list[Any]) -> list[dict[str, Any]]:
    """The parked automatic tracks of a run's results, as ``subtitles.publish_subtitles`` takes them."""
    return [{"language": r.language, "title": track_title(r.language), "key": r.vtt, "auto": True}
            for r in results if isinstance(r, CaptionsResult) and r.vtt]


def caption_outputs(results: list[Any]) -> list[OutputRecord]:
    return [o for r in results if isinstance(r, CaptionsResult) for o in r.outputs]


def optional_items(items: list[dict[str, Any]], results: list[dict[str, Any]]) -> tuple[int, int]:
    """(items the video needs, results of those): a captions item is optional, so one that failed for good (a
    killed worker, its retries spent) leaves the video published without automatic captions."""
    def needed(entries: list[dict[str, Any]]) -> int:
        return sum(1 for e in entries if e.get("kind") != Captions.kind)

    return needed(items), needed(results)
