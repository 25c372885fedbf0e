"""The work of one video as typed values: the plan ``prepare`` makes once, the items ``transcode`` is mapped
over, and what each item hands to ``publish``. Pure; no Airflow.

XCom stays JSON: each value crosses a task boundary through its ``to_dict``/``from_dict`` (items and results by
their ``kind``), and nowhere else. The plan travels once per task, not copied into every item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from vodflow.media.encode.chunks import Chunk
from vodflow.media.encode.ladder import Rendition
from vodflow.media.measured import MeasuredAudio, MeasuredRendition
from vodflow.media.pictures.thumbnails import PicturePlan
from vodflow.pipeline.outputs.base import OutputRecord


@dataclass(frozen=True)
class EncodePlan:
    """What every work item of a video encodes: the ladder, the pictures, and how the timeline is cut."""

    renditions: tuple[Rendition, ...]
    pictures: PicturePlan
    duration: float  # the source's, in seconds
    chunks: int = 0  # 0: the whole video is one item

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.renditions]

    @property
    def audio_bitrates(self) -> list[int]:
        return sorted({r.audio_kbps for r in self.renditions if r.audio_kbps})

    def to_dict(self) -> dict[str, Any]:
        return {"renditions": [r.to_dict() for r in self.renditions], "pictures": self.pictures.to_dict(),
                "duration": self.duration, "chunks": self.chunks}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncodePlan:
        return cls(renditions=tuple(Rendition.from_dict(r) for r in data["renditions"]),
                   pictures=PicturePlan.from_dict(data["pictures"]), duration=data["duration"],
                   chunks=data["chunks"])


# Work items -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WholeVideo:
    """Every rendition and the pictures from one decode of the whole source."""

    kind: ClassVar[str] = "renditions"
    label: str  # the renditions' names, e.g. "1080p 720p 480p 360p" (the mapped task's name in the UI)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WholeVideo:
        return cls(label=data["label"])


@dataclass(frozen=True)
class ChunkOfVideo:
    """One stretch of a long source, every rendition's video and the pictures in it, decoded once."""

    kind: ClassVar[str] = "chunk"
    chunk: Chunk

    @property
    def label(self) -> str:
        return self.chunk.label

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "chunk": self.chunk.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkOfVideo:
        return cls(chunk=Chunk.from_dict(data["chunk"]))


@dataclass(frozen=True)
class WholeAudio:
    """A chunked run's audio: the whole track once per bitrate (audio is never cut, so no seam can click)."""

    kind: ClassVar[str] = "audio"
    label: ClassVar[str] = "audio"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WholeAudio:
        return cls()


WorkItem = WholeVideo | ChunkOfVideo | WholeAudio
ITEM_KINDS: dict[str, type[WholeVideo] | type[ChunkOfVideo] | type[WholeAudio]] = {
    cls.kind: cls for cls in (WholeVideo, ChunkOfVideo, WholeAudio)}


def _decode(kinds: dict[str, Any], data: dict[str, Any], what: str) -> Any:
    """The value a dict (an XCom) describes, by its ``kind``; an unknown kind is an error, never a default."""
    kind = data.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown {what} kind {kind!r}")
    return kinds[kind].from_dict(data)


def item_from_dict(data: dict[str, Any]) -> WorkItem:
    return _decode(ITEM_KINDS, data, "work item")


def plan_items(plan: EncodePlan, chunks: list[Chunk], has_audio: bool, has_subtitles: bool = False,
               per_title: bool = False) -> list[WorkItem]:
    """One item for the whole video, or one per chunk plus the audio first (the whole track is the longest
    single item, so it must not be the tail). The audio item also extracts the text subtitles (it reads the whole
    source), so a chunked source with subtitles and no sound still gets one."""
    if len(chunks) < 2:  # a per-title ladder's rungs are not known yet
        return [WholeVideo(label="per-title ladder" if per_title else " ".join(plan.names))]
    items: list[WorkItem] = [ChunkOfVideo(chunk) for chunk in chunks]
    whole_track = (has_audio and plan.audio_bitrates) or has_subtitles
    return [WholeAudio(), *items] if whole_track else items


# Results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WholeVideoResult:
    kind: ClassVar[str] = "renditions"
    measured: tuple[MeasuredRendition, ...]
    pictures: tuple[str, ...] = ()  # keys of the pictures this item uploaded
    audio: tuple[MeasuredAudio, ...] = ()  # the audio group (main track first), when there are other tracks
    subtitles: tuple[dict[str, Any], ...] = ()  # the source's text subtitles as parked WebVTT: language, title, key
    outputs: tuple[OutputRecord, ...] = ()  # the optional outputs made from this encode (pipeline.outputs)
    renditions: tuple[Rendition, ...] = ()  # the ladder encoded (a per-title one: decided by this item)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "measured": [m.to_dict() for m in self.measured], "pictures": list(self.pictures),
                "audio": [a.to_dict() for a in self.audio], "subtitles": list(self.subtitles),
                "outputs": [o.to_dict() for o in self.outputs], "renditions": [r.to_dict() for r in self.renditions]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WholeVideoResult:
        return cls(measured=tuple(MeasuredRendition.from_dict(m) for m in data["measured"]),
                   pictures=tuple(data["pictures"]),
                   audio=tuple(MeasuredAudio.from_dict(a) for a in data.get("audio", [])),
                   subtitles=tuple(data.get("subtitles", [])),
                   outputs=tuple(OutputRecord.from_dict(o) for o in data.get("outputs", [])),
                   renditions=tuple(Rendition.from_dict(r) for r in data.get("renditions", [])))


@dataclass(frozen=True)
class ChunkResult:
    kind: ClassVar[str] = "chunk"
    index: int
    keys: dict[str, str] = field(default_factory=dict)  # rendition name → parked piece
    pictures: tuple[str, ...] = ()
    renditions: tuple[Rendition, ...] = ()  # what the chunk encoded (a per-title ladder: decided by the chunk)
    # A per-title run: rendition name → the VMAF of each frame scored in this chunk (``publish`` pools them).
    vmaf_frames: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": self.index, "keys": self.keys, "pictures": list(self.pictures),
                "renditions": [r.to_dict() for r in self.renditions], "vmaf_frames": self.vmaf_frames}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkResult:
        return cls(index=data["index"], keys=dict(data["keys"]), pictures=tuple(data["pictures"]),
                   renditions=tuple(Rendition.from_dict(r) for r in data.get("renditions", [])),
                   vmaf_frames={name: list(found) for name, found in data.get("vmaf_frames", {}).items()})


@dataclass(frozen=True)
class AudioResult:
    kind: ClassVar[str] = "audio"
    keys: dict[str, str] = field(default_factory=dict)  # AAC bitrate (kbps, as text) → parked track
    audio: tuple[MeasuredAudio, ...] = ()  # the audio group, as WholeVideoResult's
    subtitles: tuple[dict[str, Any], ...] = ()  # as WholeVideoResult's
    pictures: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "keys": self.keys, "audio": [a.to_dict() for a in self.audio],
                "subtitles": list(self.subtitles)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioResult:
        return cls(keys=dict(data["keys"]), audio=tuple(MeasuredAudio.from_dict(a) for a in data.get("audio", [])),
                   subtitles=tuple(data.get("subtitles", [])))


WorkResult = WholeVideoResult | ChunkResult | AudioResult
RESULT_KINDS: dict[str, type[WholeVideoResult] | type[ChunkResult] | type[AudioResult]] = {
    cls.kind: cls for cls in (WholeVideoResult, ChunkResult, AudioResult)}


def result_from_dict(data: dict[str, Any]) -> WorkResult:
    return _decode(RESULT_KINDS, data, "work result")
