"""Values the catalog takes and the refusals it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vodflow.errors import Refused, StandDown


class Superseded(StandDown):
    """A newer version of the video was published (or is being built by a newer run)."""


class AlreadyActive(StandDown):
    """Another run is building this video right now; a second run would only race it."""

    def __init__(self, video_id: str, run_id: str) -> None:
        super().__init__(f"video {video_id} is already being processed by run {run_id}")
        self.video_id, self.run_id = video_id, run_id


class AlreadyEncoded(AlreadyActive):
    """A watcher's run for an object another run (an app's, started through Airflow's own API) has already taken
    on: the object is encoded once, whichever run got there first."""

    def __init__(self, video_id: str, run_id: str) -> None:
        StandDown.__init__(self, f"video {video_id} was already made from this object by run {run_id}")
        self.video_id, self.run_id = video_id, run_id


class BeingDeleted(AlreadyActive):
    """The video is being deleted: a run that would register it stands down (it would publish into a void)."""

    def __init__(self, video_id: str) -> None:
        StandDown.__init__(self, f"video {video_id} is being deleted")
        self.video_id, self.run_id = video_id, ""


class OtherSource(Refused):
    """A run named an existing video's id with another source: registering it would replace that video's content
    (a re-run of the video — retry, reprocess — has its own source)."""

    def __init__(self, video_id: str) -> None:
        super().__init__(f"video {video_id} is made from another source")
        self.video_id = video_id


@dataclass(frozen=True)
class UploadObject:
    """An object the upload watcher found under the watched prefix."""

    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class VariantRecord:
    name: str
    bandwidth: int
    average_bandwidth: int
    playlist_uri: str


@dataclass(frozen=True)
class RenditionPlan:
    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int
    frame_rate: float
    codec: str = "h264"  # media.encode.codecs: h264, av1, hevc
    dynamic_range: str = "SDR"  # HLS VIDEO-RANGE: SDR, PQ, HLG
