"""The optional outputs' vocabulary: what a handler is given (a locally encoded rendition), what it makes (files
to upload under the version prefix) and what the catalog keeps of them (records). Pure; no Airflow.

A handler works on the encode's own local files — a rendition's HLS segments right after ``transcode`` wrote
them, or, for a chunked run, right after ``publish`` joined them — so an output is a remux (or a cheap decode of
a small rendition), never a second read of the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from vodflow import layout
from vodflow.codec import Coded
from vodflow.media.encode.ladder import Rendition
from vodflow.media.measured import MeasuredRendition

if TYPE_CHECKING:
    from vodflow.pipeline.plan import EncodePlan
    from vodflow.pipeline.services import Job, Services
    from vodflow.settings import Settings


@dataclass(frozen=True)
class EncodedRendition:
    """One rendition as encoded on this machine: its plan, its measurement and the folder holding its
    ``index.m3u8`` (ffmpeg's, not uploaded) and ``seg_NNNNN.ts`` files (``measured.segments`` lists them)."""

    rendition: Rendition
    measured: MeasuredRendition
    directory: str

    @property
    def segment_paths(self) -> list[str]:
        return [f"{self.directory}/{s.uri}" for s in self.measured.segments]


@dataclass(frozen=True)
class OutputContext:
    """What a handler may know about the run; ``workdir`` is a scratch folder of its own (removed after)."""

    job: Job
    plan: EncodePlan
    settings: Settings
    workdir: str
    # The other codecs' renditions encoded on this machine: name (``av1-720p``) → its local fragmented MP4, for a
    # handler that can reuse one (a WebM copies the AV1 rung's picture instead of encoding it again).
    codec_tracks: dict[str, str] = field(default_factory=dict)

    @property
    def top(self) -> str:
        return self.plan.renditions[0].name

    @property
    def lowest(self) -> str:
        return self.plan.renditions[-1].name


@dataclass(frozen=True)
class OutputFile:
    """A file a handler made, uploaded by the pipeline to ``<version prefix><key>`` (Content-Type from the
    extension; ``filename`` set: an ``attachment`` Content-Disposition with it). ``listed`` files become catalog
    records (a download, a manifest); unlisted ones (e.g. segments) are only uploaded."""

    kind: str
    name: str  # what it is within its kind: "1080p", "m4a", "mp3", "sprite_000", "vtt", …
    path: str
    key: str  # relative to the version prefix, e.g. "downloads/1080p.mp4"
    duration: float | None = None
    codecs: str | None = None
    filename: str | None = None
    listed: bool = True


@dataclass(frozen=True)
class OutputRecord(Coded):
    """One published output of a version, as the catalog keeps it and the API lists it."""

    kind: str
    name: str
    key: str  # the full object key
    bytes: int
    content_type: str
    duration: float | None = None
    codecs: str | None = None
    filename: str | None = None

    @classmethod
    def of_file(cls, made: OutputFile, key: str, size: int) -> OutputRecord:
        return cls(kind=made.kind, name=made.name, key=key, bytes=size, content_type=layout.content_type(key),
                   duration=made.duration, codecs=made.codecs, filename=made.filename)


class OutputHandler:
    """One output kind. ``encoded`` runs once per rendition, in ladder order (top first), on the local encode;
    ``publish`` runs once in ``publish`` after every rendition's files are uploaded and before the catalog
    switch, with the measured (TS) renditions and every record so far (e.g. to write a manifest over them), and
    returns records to add. Both must be deterministic for the same input: a retried task runs them again."""

    kind: ClassVar[str] = ""

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        return []

    def publish(self, services: Services, job: Job, plan: EncodePlan, renditions: list[MeasuredRendition],
                records: list[OutputRecord]) -> list[OutputRecord]:
        return []
