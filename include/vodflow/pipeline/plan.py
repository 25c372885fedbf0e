"""The plan ``prepare`` makes once per video: what every work item encodes. Pure; no Airflow.

A leaf of ``pipeline``: the work items (``work``) and the optional outputs (``outputs``) both read it, and it reads
neither, so their imports point one way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vodflow.codec import Coded
from vodflow.media.encode.codecs import codec_ladder
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
    # The other codecs' renditions (``media.encode.codecs``), encoded straight to CMAF beside the H.264 ladder
    # (``renditions``) from the same decode; named ``<codec>-<rung>``, e.g. ``av1-1080p``.
    cmaf_renditions: tuple[Rendition, ...] = ()

    @property
    def codecs(self) -> tuple[str, ...]:
        return ("h264", *dict.fromkeys(r.codec for r in self.cmaf_renditions))

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.renditions]

    @property
    def all_names(self) -> list[str]:
        """Every rendition's name, H.264's first: what the catalog lists."""
        return [*self.names, *(r.name for r in self.cmaf_renditions)]

    def with_ladder(self, renditions: tuple[Rendition, ...]) -> EncodePlan:
        """The plan with another H.264 ladder (a per-title run's, decided on the worker): every other codec's
        renditions follow it (``codec_ladder`` of the new rungs, each codec keeping its dynamic range)."""
        if tuple(renditions) == self.renditions:
            return self  # the other codecs' rungs as planned
        ranges = {r.codec: r.dynamic_range for r in self.cmaf_renditions}
        others = tuple(r for codec, kept in ranges.items() for r in codec_ladder(renditions, codec, kept))
        return replace(self, renditions=tuple(renditions), cmaf_renditions=others)

    @property
    def audio_bitrates(self) -> list[int]:
        return sorted({r.audio_kbps for r in self.renditions if r.audio_kbps})
