"""One building version's early tree (issue 25): what a player can start on while the version is encoded.

``open`` writes ``early/master.m3u8`` once; ``add`` records segments that are up in the bucket and rewrites the
changed tracks' EVENT playlists (``media.package.event_playlist``) from the catalog's rows, under the version's
row lock (``catalog.early``), so writers on several hosts never lose or reorder a line and a playlist object is
never overwritten by an older rendering; ``complete`` ends a track. Once every track lists its first segment, the
video is playable: flag, history event and a ``video.playable`` webhook, once.

Best effort throughout: early playback is never a reason for an encode to fail or wait. A write that fails is
logged; the next ``add`` renders from the rows again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from vodflow import layout
from vodflow.catalog.early import EarlySession
from vodflow.integrations import webhooks
from vodflow.layout import NO_CACHE
from vodflow.media.package.event_playlist import (
    EventEntry,
    EventVariant,
    event_master,
    event_playlist,
    event_target_duration,
)
from vodflow.pipeline.plan import EncodePlan
from vodflow.pipeline.services import Job, Services

log = logging.getLogger(__name__)
AUDIO_TRACK = "audio"
MASTER = "master.m3u8"


@dataclass(frozen=True)
class EarlySegment:
    track: str  # rendition name, or "audio"
    seq: int  # position on the early grid (``segmented.EarlyGrid``: the lead-in, then the VOD's 6 s), from 0
    uri: str  # as written in the playlist (relative to early/<track>/)
    duration: float  # seconds


def upload_segment(services: Services, key: str, path: str) -> None:
    """One segment, PUT with its Content-Type (immutable: its bytes never change under its key)."""
    services.storage.upload_file(path, key)


def early_tracks(plan: EncodePlan) -> list[str]:
    """Every H.264 rendition, and a chunked run's demuxed audio."""
    return [*plan.names, *([AUDIO_TRACK] if plan.chunks and plan.audio_bitrates else [])]


class EarlyTree:
    """One version's early tree; safe to use from several work items on several hosts at once."""

    def __init__(self, services: Services, job: Job, tracks: list[str], target: int) -> None:
        self.services, self.job, self.tracks, self.target = services, job, tracks, target
        self.prefix = layout.early_prefix(job.video_id, job.version)
        self.playlist_puts = 0  # what this process wrote: the early path's cost
        self._notifier: threading.Thread | None = None

    @classmethod
    def open(cls, services: Services, job: Job, plan: EncodePlan) -> EarlyTree | None:
        """The tree, its master playlist written; None when early playback is off or the version is not building
        (or the catalog or bucket said no: the encode goes on without it)."""
        if not services.settings.early_playback or not plan.renditions:
            return None
        tracks = early_tracks(plan)
        tree = cls(services, job, tracks, event_target_duration(services.settings.encoder.segment_seconds))
        try:
            with services.catalog.early_session(job.video_id, job.version) as session:
                if session is None:
                    return None
                if session.open_tracks(tracks):  # the first item to open the tree writes its master, once
                    variants = [EventVariant(r.name, r.width, r.height, r.video_kbps, r.audio_kbps, r.fps)
                                for r in plan.renditions]
                    master = event_master(variants, f"{AUDIO_TRACK}/index.m3u8" if AUDIO_TRACK in tracks else None)
                    services.storage.put_text(tree.prefix + MASTER, master, cache_control=NO_CACHE)
        except Exception:
            log.exception("Early playback of %s v%d could not start; the encode goes on without it",
                          job.video_id, job.version)
            return None
        return tree

    @property
    def master_key(self) -> str:
        return self.prefix + MASTER

    def add(self, segments: list[EarlySegment]) -> None:
        """Record segments that are in the bucket; rewrite the playlists they extend; mark the video playable once
        every track lists its first segment."""
        self._update(segments, {})

    def complete(self, track: str, last_seq: int) -> None:
        """The track has exactly seq 0..last_seq: its playlist ends once all of them are listed."""
        self._update([], {track: last_seq})

    def close(self, timeout: float | None = None) -> None:
        """Wait for the ``video.playable`` webhook, if one is being sent (bounded by its delivery deadline)."""
        if self._notifier is not None:
            self._notifier.join(timeout)

    def _update(self, segments: list[EarlySegment], last: dict[str, int]) -> None:
        job = self.job
        try:
            with self.services.catalog.early_session(job.video_id, job.version) as session:
                if session is None:  # failed or discarded meanwhile: nothing more may appear
                    return
                session.insert((s.track, s.seq, s.uri, s.duration) for s in segments)
                for track, seq in last.items():
                    session.set_last(track, seq)
                became = self._render(session, {s.track for s in segments} | set(last))
        except Exception:
            log.exception("Early playlists of %s v%d not updated", job.video_id, job.version)
            return
        if became:
            self._notifier = threading.Thread(target=self._notify_playable, name="early-playable")
            self._notifier.start()

    def _render(self, session: EarlySession, changed: set[str]) -> bool:
        states = session.tracks()
        for track in sorted(changed & set(states)):
            state = states[track]
            rows = [EventEntry(r.seq, r.uri, r.duration) for r in session.segments(track)]
            text, listed, ended = event_playlist(rows, self.target, state.last_seq)
            if (listed, ended) == (state.listed, state.ended):
                continue  # nothing new to list (a later segment waits for an earlier one)
            self.services.storage.put_text(f"{self.prefix}{track}/index.m3u8", text, cache_control=NO_CACHE)
            self.playlist_puts += 1
            session.mark_listed(track, listed, ended)
            states[track] = replace(state, listed=listed, ended=ended)
        if states and all(s.listed for s in states.values()):
            return session.mark_playable(self.url)
        return False

    @property
    def url(self) -> str | None:
        """The early master where a player fetches it: public when media is (``public_base_url``), else None."""
        base = self.services.settings.public_base_url
        return f"{base}/{self.master_key}" if base else None

    def _notify_playable(self) -> None:
        """``video.playable`` to the run's callback, once per (video, version); never email."""
        from vodflow.pipeline.notify import send_webhook

        job = self.job
        try:
            video = self.services.catalog.get_video(job.video_id)
            if not job.callback_url or video is None:
                return
            event = webhooks.build_event(webhooks.PLAYABLE_EVENT, video, job.version, {"playable_url": self.url})
            if "webhook" not in self.services.catalog.notified(job.video_id, event["id"]):
                send_webhook(self.services, job, event)
        except Exception:
            log.exception("video.playable of %s v%d not sent", job.video_id, job.version)
