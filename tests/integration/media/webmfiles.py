"""A rendition and its WebM downloads made as the pipeline makes them, minus S3: the media and the browser tests
share them. The source is a lip-sync sample (a flash and a beep at every whole second, its audio 0.3 s ahead of
its picture), 5 s of 640x360 at 29.97 fps."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from vodflow.devtools.samples import make_sync_sample
from vodflow.media.encode.codecs import codec_ladder, modern_ffmpeg
from vodflow.media.encode.ladder import Rendition, plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings
from vodflow.media.package import webm
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

SECONDS, FPS, LEAD = 5.0, "30000/1001", 0.3


@dataclass(frozen=True)
class Made:
    source: Path
    rendition: Rendition
    measured: MeasuredRendition
    segments: list[str]


def sync_rendition(folder: Path) -> Made:
    """The source and its one (360p) H.264 rendition, encoded by the pipeline's own encoder."""
    src = make_sync_sample(str(folder / "src.mp4"), SECONDS, FPS, audio_lead=LEAD, width=640, height=360)
    path = Path(src)
    source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    [rendition] = plan_ladder(source.width, source.height, source.fps, True, "default").renditions
    [measured] = encode_renditions(src, str(folder / "hls"), source, [rendition], EncoderSettings())
    segments = [str(folder / "hls" / rendition.name / s.uri) for s in measured.segments]
    return Made(path, rendition, measured, segments)


def encoded_webm(made: Made, out: Path) -> webm.WebmFacts:
    """The encode path: SVT-AV1 from the H.264 segments, at the AV1 ladder's rate for the rung."""
    r = made.rendition
    picture = webm.WebmPicture(r.width, r.height, r.fps, codec_ladder((r,), "av1")[0].video_kbps)
    return webm.make_webm(made.segments, str(out), made.measured.duration, picture=picture, audio_kbps=r.audio_kbps)


def av1_cmaf_track(made: Made, folder: Path) -> webm.Av1Track:
    """An AV1 CMAF track of the rung (``init.mp4`` + ``seg_NNNNN.m4s``), as an AV1 ladder's encode would leave it:
    made here with the modern ffmpeg from the rendition's segments, on the TS timeline (``-copyts``), keyframes
    every 2 s, 2 s segments."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([modern_ffmpeg(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-copyts",  # noqa: S603
                    "-protocol_whitelist", "concat,file", "-f", "mpegts", "-i", "concat:" + "|".join(made.segments),
                    "-map", "0:v:0", "-c:v", "libsvtav1", "-preset", "12", "-b:v", "300k",
                    "-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "120", "-f", "hls",
                    "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
                    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(folder / "seg_%05d.m4s"),
                    str(folder / "index.m3u8")], check=True, capture_output=True)
    track = webm.av1_track_in(str(folder))
    assert track is not None and len(track.segments) == 3
    return track
