"""``storyboard`` output, the pipeline adapter of ``media.pictures.storyboard``: sprite sheets and their WebVTT index
from the smallest rendition."""

from __future__ import annotations

import os

from vodflow import layout
from vodflow.media.pictures.storyboard import make_storyboard, plan_storyboard
from vodflow.pipeline.outputs.base import EncodedRendition, OutputContext, OutputFile, OutputHandler


class Storyboard(OutputHandler):
    kind = "storyboard"

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        if encoded.rendition.name != ctx.lowest:
            return []
        r, duration = encoded.rendition, encoded.measured.duration
        plan = plan_storyboard(duration, r.width, r.height)
        sheets, vtt = make_storyboard(encoded.segment_paths, ctx.workdir, plan, duration)
        prefix = layout.STORYBOARD_DIR
        files = [OutputFile(kind=self.kind, name=os.path.basename(p).removesuffix(".jpg"), path=p,
                            key=prefix + os.path.basename(p)) for p in sheets]
        return [*files, OutputFile(kind=self.kind, name="vtt", path=vtt, key=prefix + os.path.basename(vtt),
                                   duration=duration)]
