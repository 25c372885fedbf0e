"""``webm`` output, the pipeline adapter of ``media.package.webm``: one AV1 + Opus WebM download per chosen rendition
(the same choice as ``mp4``: the request's ``mp4_renditions``), stored with a Content-Disposition naming it after the
video's title and listed with its size, duration and exact codecs like the MP4 downloads."""

from __future__ import annotations

import os

from vodflow import layout
from vodflow.media.encode.codecs import codec_ladder
from vodflow.media.package import webm
from vodflow.pipeline.outputs.base import EncodedRendition, OutputContext, OutputFile, OutputHandler
from vodflow.pipeline.outputs.downloads import mp4_renditions


def av1_track_for(ctx: OutputContext, encoded: EncodedRendition) -> webm.Av1Track | None:
    """The run's own AV1 rendition of this rung when this machine has just encoded it (one fragmented MP4), so
    the WebM copies its picture instead of encoding a second generation from the H.264 segments; else None."""
    path = ctx.codec_tracks.get(f"av1-{encoded.rendition.name}")
    return webm.Av1Track(init=path, segments=()) if path and os.path.isfile(path) else None


class WebmDownloads(OutputHandler):
    """Each chosen rendition as one WebM: AV1 (copied from the run's AV1 rung, else SVT-AV1 from the H.264
    segments at the AV1 ladder's rate for that rung) and Opus from the rendition's AAC; index at the front."""

    kind = "webm"

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        r = encoded.rendition
        if r.name not in mp4_renditions(ctx.plan, ctx.job.mp4_renditions):
            return []
        out = os.path.join(ctx.workdir, f"{r.name}.webm")
        av1 = av1_track_for(ctx, encoded)
        picture = None if av1 else webm.WebmPicture(r.width, r.height, r.fps,
                                                     codec_ladder((r,), "av1")[0].video_kbps)
        facts = webm.make_webm(encoded.segment_paths, out, encoded.measured.duration, picture=picture, av1=av1,
                               audio_kbps=r.audio_kbps)
        suffix = "" if len(ctx.plan.renditions) == 1 else f" ({r.name})"
        return [OutputFile(kind=self.kind, name=r.name, path=out, key=f"{layout.WEBM_DIR}{r.name}.webm",
                           duration=facts.duration, codecs=facts.codecs,
                           filename=layout.download_filename(ctx.job.title + suffix, ".webm"))]
