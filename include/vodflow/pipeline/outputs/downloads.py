"""``mp4`` and ``audio`` outputs, the pipeline adapter of ``media.package.downloads``: download files remuxed from the
encode's own segments, stored with a Content-Disposition naming them after the video's title."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vodflow import layout
from vodflow.media.package import downloads
from vodflow.pipeline.outputs.base import EncodedRendition, OutputContext, OutputFile, OutputHandler

if TYPE_CHECKING:
    from vodflow.pipeline.plan import EncodePlan


def mp4_renditions(plan: EncodePlan, wanted: str | list[str] | tuple[str, ...]) -> list[str]:
    """Which of this video's renditions become MP4 downloads: ``top``, ``all`` or names (those the ladder has;
    none of them there: the top one, so asking for mp4 always gives one)."""
    names = plan.names
    choice = [wanted] if isinstance(wanted, str) else list(wanted)
    if "all" in choice:
        return names
    picked = [n for n in names if n in choice or ("top" in choice and n == names[0])]
    return picked or names[:1]


class Mp4Downloads(OutputHandler):
    """Each chosen rendition as one faststart MP4, both streams copied."""

    kind = "mp4"

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        name = encoded.rendition.name
        if name not in mp4_renditions(ctx.plan, ctx.job.mp4_renditions):
            return []
        out = os.path.join(ctx.workdir, f"{name}.mp4")
        facts = downloads.run(downloads.mp4_command(encoded.segment_paths, out, ctx.job.title), out,
                              encoded.measured.duration)
        suffix = "" if len(ctx.plan.renditions) == 1 else f" ({name})"
        return [OutputFile(kind=self.kind, name=name, path=out, key=f"{layout.MP4_DIR}{name}.mp4",
                           duration=facts.duration, codecs=encoded.measured.codecs,
                           filename=layout.download_filename(ctx.job.title + suffix, ".mp4"))]


def audio_source(plan: EncodePlan) -> str | None:
    """The rendition whose AAC the audio downloads come from (the highest audio bitrate); None: no audio."""
    best = max(plan.renditions, key=lambda r: r.audio_kbps)
    return best.name if best.audio_kbps else None


class AudioDownloads(OutputHandler):
    """The main audio track as M4A (AAC copied) and MP3 (libmp3lame); a video without sound gets neither."""

    kind = "audio"

    def encoded(self, ctx: OutputContext, encoded: EncodedRendition) -> list[OutputFile]:
        if encoded.rendition.name != audio_source(ctx.plan):
            return []
        made = []
        for fmt, command, codecs in (("m4a", downloads.m4a_command, "mp4a.40.2"),
                                     ("mp3", downloads.mp3_command, downloads.MP3_CODEC)):
            out = os.path.join(ctx.workdir, f"{layout.slug(ctx.job.title)}.{fmt}")
            facts = downloads.run(command(encoded.segment_paths, out, ctx.job.title), out, encoded.measured.duration)
            made.append(OutputFile(kind=self.kind, name=fmt, path=out, key=f"{layout.AUDIO_DIR}{os.path.basename(out)}",
                                   duration=facts.duration, codecs=codecs,
                                   filename=layout.download_filename(ctx.job.title, f".{fmt}")))
        return made
