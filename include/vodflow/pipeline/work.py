"""The work of one video as typed values: the items ``transcode`` is mapped over, and what each hands to
``publish``. Pure; no Airflow.

Items and results cross task boundaries as JSON through the one codec (``vodflow.codec``): each is a member of
a union (``WorkItem``, ``WorkResult``) told apart by its ``kind``, unique within that union. Adding a kind is one
item class (in ``WorkItem``), its result class (in ``WorkResult``) and one handler (``transcode.HANDLERS``).
The ``kind`` strings are what running and finished runs stored: an item and its result may share one (they are
never decoded as each other), and renaming one would strand the XComs of runs in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from vodflow.codec import Coded, decode
from vodflow.media.encode.chunks import Chunk
from vodflow.media.encode.ladder import Rendition
from vodflow.media.measured import MeasuredAudio, MeasuredRendition
from vodflow.pipeline.outputs.base import OutputRecord
from vodflow.pipeline.plan import EncodePlan


# Work items -----------------------------------------------------------------------------------------------
# Every item has a ``label``: the mapped task's name in the UI (the DAG reads it from the item's XCom).
@dataclass(frozen=True)
class WholeVideo(Coded):
    """Every rendition and the pictures from one decode of the whole source."""

    kind: ClassVar[str] = "renditions"
    label: str  # the renditions' names, e.g. "1080p 720p 480p 360p"


@dataclass(frozen=True)
class ChunkOfVideo(Coded):
    """One stretch of a long source, every rendition's video and the pictures in it, decoded once."""

    kind: ClassVar[str] = "chunk"
    label: str = field(init=False)  # "chunk 03": the chunk's
    chunk: Chunk

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self.chunk.label)


@dataclass(frozen=True)
class WholeAudio(Coded):
    """A chunked run's audio: the whole track once per bitrate (audio is never cut, so no seam can click)."""

    kind: ClassVar[str] = "audio"
    label: str = field(default="audio", init=False)


@dataclass(frozen=True)
class Captions(Coded):
    """Automatic captions: the main audio track's speech recognised (``pipeline.auto_captions``), beside the encode."""

    kind: ClassVar[str] = "captions"
    label: str = field(default="captions", init=False)
    language: str | None = None  # None: the model's own, or detected


WorkItem = WholeVideo | ChunkOfVideo | WholeAudio | Captions


def item_from_dict(data: dict[str, Any]) -> WorkItem:
    """The item an XCom describes, by its ``kind``; an unknown kind is an error, never a default."""
    return decode(WorkItem, data, "work item")


def plan_items(plan: EncodePlan, chunks: list[Chunk], has_audio: bool, has_subtitles: bool = False,
               per_title: bool = False, captions: Captions | None = None) -> list[WorkItem]:
    """One item for the whole video, or one per chunk plus the audio first (the whole track is the longest
    single item, so it must not be the tail). The audio item also extracts the text subtitles (it reads the whole
    source), so a chunked source with subtitles and no sound still gets one. ``captions`` (a source with sound):
    after the whole video, so the encode takes the first free slot, or before the chunks, as the audio."""
    extra: list[WorkItem] = [captions] if captions is not None and has_audio else []
    if len(chunks) < 2:  # a per-title ladder's rungs are not known yet
        return [WholeVideo(label="per-title ladder" if per_title else " ".join(plan.names)), *extra]
    items: list[WorkItem] = [ChunkOfVideo(chunk) for chunk in chunks]
    whole_track = (has_audio and plan.audio_bitrates) or has_subtitles
    return [WholeAudio(), *extra, *items] if whole_track else [*extra, *items]


# Results --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WholeVideoResult(Coded):
    kind: ClassVar[str] = "renditions"
    measured: tuple[MeasuredRendition, ...]
    pictures: tuple[str, ...] = ()  # keys of the pictures this item uploaded
    audio: tuple[MeasuredAudio, ...] = ()  # the audio group (main track first), when there are other tracks
    subtitles: tuple[dict[str, Any], ...] = ()  # the source's text subtitles as parked WebVTT: language, title, key
    outputs: tuple[OutputRecord, ...] = ()  # the optional outputs made from this encode (pipeline.outputs)
    renditions: tuple[Rendition, ...] = ()  # the ladder encoded (a per-title one: decided by this item)


@dataclass(frozen=True)
class ChunkResult(Coded):
    kind: ClassVar[str] = "chunk"
    index: int
    keys: dict[str, str] = field(default_factory=dict)  # rendition name → parked piece
    pictures: tuple[str, ...] = ()
    renditions: tuple[Rendition, ...] = ()  # what the chunk encoded (a per-title ladder: decided by the chunk)
    # A per-title run: rendition name → the VMAF of each frame scored in this chunk (``publish`` pools them).
    vmaf_frames: dict[str, list[float]] = field(default_factory=dict)
    first_frame: int = 0  # the chunk's first frame on the output grid: where the join places its fMP4 pieces


@dataclass(frozen=True)
class AudioResult(Coded):
    kind: ClassVar[str] = "audio"
    keys: dict[str, str] = field(default_factory=dict)  # AAC bitrate (kbps, as text) → parked track
    audio: tuple[MeasuredAudio, ...] = ()  # the audio group, as WholeVideoResult's
    subtitles: tuple[dict[str, Any], ...] = ()  # as WholeVideoResult's


@dataclass(frozen=True)
class CaptionsResult(Coded):
    """What the captions item left: a parked WebVTT and the transcripts' keys, or why there are none."""

    kind: ClassVar[str] = "captions"
    language: str = ""
    vtt: str = ""  # the parked WebVTT (``chunks/``), segmented by ``publish``; "" when there are no cues
    outputs: tuple[OutputRecord, ...] = ()  # transcripts and the whole WebVTT, uploaded under the version
    cues: int = 0
    reason: str = ""  # why there are no captions (no speech, no model, an error)


WorkResult = WholeVideoResult | ChunkResult | AudioResult | CaptionsResult


def result_from_dict(data: dict[str, Any]) -> WorkResult:
    """The result an XCom describes, by its ``kind``; an unknown kind is an error, never a default."""
    return decode(WorkResult, data, "work result")
