"""A small multi-codec CMAF tree as issue 24's pipeline makes it, minus S3 and Airflow: the H.264 ladder through the
real encode and remux (as ``cmaftree``), and beside it AV1 and HEVC renditions encoded by the modern ffmpeg
(``codecs.modern_ffmpeg``) straight to fragmented MP4 (``cmaf.VIDEO_FLAGS``) with IDRs forced every 2 s, on the
H.264 ladder's timeline (its first PTS as the output offset), cut into segments on the H.264 segments' boundaries
by ``cmaf.split_video``; then every playlist, the per-codec masters and the MPD by ``cmaf_hls``/``dash``.

Until ``fmp4.read_init`` reads the ``av01``/``hvc1`` sample entries itself (helper "enc"), ``reading_any_codec``
gives ``split_video`` their RFC 6381 strings from the ``av1C``/``hvcC`` boxes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

from vodflow.media.encode.codecs import codec_ladder, modern_ffmpeg
from vodflow.media.encode.ladder import Rendition, plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings
from vodflow.media.package import cmaf_hls, dash, fmp4
from vodflow.media.package.cmaf import (
    VIDEO_FLAGS,
    CmafTrack,
    audio_from,
    audio_track_name,
    package_rendition,
    split_video,
)
from vodflow.media.package.mpegts import PTS_HZ
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

ENCODERS = {  # a quick encode of each codec, the IDR grid forced on time and nothing else adding keyframes
    "av1": ["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "keyint=60:scd=0"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
             "-x265-params", "keyint=60:min-keyint=60:scenecut=0:open-gop=0:log-level=error"],
}


def av1_codec(av1c: bytes) -> str:
    """``av01.P.LLT.DD`` from an AV1CodecConfigurationRecord (AV1-ISOBMFF, codecs parameter)."""
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier, high, twelve = av1c[2] >> 7, (av1c[2] >> 6) & 1, (av1c[2] >> 5) & 1
    depth = 12 if high and twelve else 10 if high else 8
    return f"av01.{profile}.{level:02d}{'H' if tier else 'M'}.{depth:02d}"


def hevc_codec(kind: str, hvcc: bytes) -> str:
    """``hvc1.P.C.TLL.B0`` from an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 E.3)."""
    space, tier, profile = hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F
    compat = int(f"{struct.unpack_from('>I', hvcc, 2)[0]:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"{kind}", f"{'ABC'[space - 1] if space else ''}{profile}", f"{compat:X}",
             f"{'H' if tier else 'L'}{hvcc[12]}", *(f"{b:X}" for b in constraints)]
    return ".".join(parts)


@contextlib.contextmanager
def reading_any_codec() -> Iterator[None]:
    original = fmp4.read_init

    def read_init(data: bytes) -> fmp4.TrackInfo:
        try:
            return original(data)
        except ValueError:
            moov = next(b for b in fmp4.boxes(data) if b.kind == b"moov")
            trak = fmp4.child(data, moov, b"trak")
            stsd = fmp4.find(data, trak, b"mdia", b"minf", b"stbl", b"stsd")
            mdhd = fmp4.find(data, trak, b"mdia", b"mdhd")
            tkhd = fmp4.find(data, trak, b"tkhd")
            entry = next(fmp4.boxes(data, stsd.body + 8, stsd.end))
            config = fmp4.child(data, fmp4.Box(entry.kind, entry.offset, entry.size, entry.header + 78),
                                b"av1C" if entry.kind == b"av01" else b"hvcC")
            body = data[config.body:config.end]
            codec = av1_codec(body) if entry.kind == b"av01" else hevc_codec(entry.kind.decode(), body)
            width, height = struct.unpack_from(">HH", data, entry.body + 24)
            return fmp4.TrackInfo(
                track_id=struct.unpack_from(">I", data, tkhd.body + (20 if data[tkhd.body] == 1 else 12))[0],
                timescale=struct.unpack_from(">I", data, mdhd.body + (20 if data[mdhd.body] == 1 else 12))[0],
                handler="vide", codec=codec, width=width, height=height,
                init_size=max(b.end for b in fmp4.boxes(data) if b.kind in (b"ftyp", b"moov")))

    fmp4.read_init = read_init
    try:
        yield
    finally:
        fmp4.read_init = original


PQ_AV1 = ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020",
          "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
          # ffmpeg 9 takes the colour from the frames, not from these output options: SVT-AV1's own parameters
          # write it into the sequence header (what the CODECS string is read from).
          "-svtav1-params", "keyint=60:scd=0:enable-hdr=1:color-primaries=9:transfer-characteristics=16:"
          "matrix-coefficients=9:color-range=0:mastering-display=G(0.17,0.797)B(0.131,0.046)"
          "R(0.708,0.292)WP(0.3127,0.329)L(1000,0.0001):content-light=1000,400"]
HDR_MASTER, HDR_MPD = "hdr-master.m3u8", "hdr-manifest.mpd"


def _encode(source_path: Path, out: Path, h264: MeasuredRendition, rendition: Rendition, args: list[str]
            ) -> CmafTrack:
    """One rendition encoded straight to fMP4 on the H.264 rendition's timeline, cut on its segment boundaries."""
    folder = out / "cmaf" / rendition.name
    folder.mkdir(parents=True, exist_ok=True)
    whole = folder / "track.mp4"
    subprocess.run([modern_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                    "-i", str(source_path), "-an", "-vf", f"scale={rendition.width}:{rendition.height}",
                    "-pix_fmt", "yuv420p", *args, "-b:v", f"{rendition.video_kbps}k",
                    "-force_key_frames", "expr:gte(t,n_forced*2)",
                    "-output_ts_offset", f"{h264.first_pts / PTS_HZ:.6f}", "-f", "mp4", "-use_editlist", "0",
                    "-movflags", VIDEO_FLAGS, str(whole)], check=True, env={**os.environ, "SVT_LOG": "1"})
    with reading_any_codec():
        track = split_video(str(whole), str(folder), dataclasses.replace(h264, name=rendition.name))
    whole.unlink()
    track.audio = audio_track_name(rendition.audio_kbps) if rendition.audio_kbps else ""
    return track


def multicodec_tree(source_path: Path, out: Path, codecs: dict[str, int], ladder: list[str], hdr: bool = False
                    ) -> list[CmafTrack]:
    """The tree under ``out/cmaf``: the H.264 ``ladder`` and, per codec, its top ``codecs[codec]`` rungs. With
    ``hdr``, also an AV1 10-bit rung tagged BT.2020/PQ (the SDR picture, labelled: enough to see which players pick
    it) named ``av1-pq-<rung>``, and a second master and MPD over the H.264 ladder and it (``HDR_MASTER``,
    ``HDR_MPD``): an HDR source's tree."""
    source = probe(str(source_path), source_path.stat().st_size, source_path.read_bytes()[:4096],
                   protocols=FILE_PROTOCOLS)
    renditions = list(plan_ladder(source.width, source.height, source.fps, source.has_audio, ladder).renditions)
    measured = encode_renditions(str(source_path), str(out / "hls"), source, renditions, EncoderSettings())
    tracks: list[CmafTrack] = []
    for rendition, m in zip(renditions, measured, strict=True):
        tracks += package_rendition(m, str(out / "hls" / m.name), str(out / "cmaf"), 6,
                                    audio_from(renditions, rendition), audio=rendition.audio_kbps)
    h264_tracks = list(tracks)
    for codec, rungs in codecs.items():
        for h264, rendition in list(zip(measured, codec_ladder(tuple(renditions), codec), strict=True))[:rungs]:
            tracks.append(_encode(source_path, out, h264, rendition, ENCODERS[codec]))
    if hdr:
        top = dataclasses.replace(codec_ladder(tuple(renditions), "av1", "PQ")[0], name=f"av1-pq-{renditions[0].name}")
        pq = _encode(source_path, out, measured[0], top, PQ_AV1)
        pq.video_range, pq.colour = "PQ", (9, 16, 9)
        _, files = cmaf_hls.render_playlists([*h264_tracks, pq])
        files = {name: text for name, text in files.items() if name.startswith(f"{pq.name}/")}
        files[HDR_MASTER] = cmaf_hls.master_playlist([*h264_tracks, pq], cmaf_hls.cmaf_target([*h264_tracks, pq]))
        files[HDR_MPD] = dash.render_mpd([*h264_tracks, pq], measured[0].duration)
        for name, text in files.items():
            (out / "cmaf" / name).write_text(text)
    _, files = cmaf_hls.render_playlists(tracks)
    files[dash.MPD] = dash.render_mpd(tracks, measured[0].duration)
    for name, text in files.items():
        (out / "cmaf" / name).write_text(text)
    return tracks
