"""The plan ``prepare`` makes once per video: what every work item encodes. Pure; no Airflow.

A leaf of ``pipeline``: the work items (``work``) and the optional outputs (``outputs``) both read it, and it reads
neither, so their imports point one way.
"""

from __future__ import annotations

from dataclasses import dataclass

from vodflow.codec import Coded
from vodflow.media.encode.ladder import Rendition
from vodflow.media.pictures.thumbnails import PicturePlan


@dataclass(frozen=True)
class EncodePlan(Coded):
    """What every work item of a video encodes: the ladder, the pictures, and how the timeline is cut. It
    travels once per task as its own XCom, not copied into every item."""

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
