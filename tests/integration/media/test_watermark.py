"""Watermarks on real encodes: one 3 s flat-grey 640x360 source encoded twice from one decode per run (H.264 at
two rungs and AV1 at two rungs, with the pictures), once without and once with a mark of solid white at a known
alpha. In every rendition the difference between the two decoded frames is confined to a box at the asked corner
whose position and size match ``watermark.placement`` within 2 px, and the blended luma gives the asked opacity
within 5 %; the poster is untouched unless the mark asks for it. A chunked encode puts the mark at the same place."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from vodflow.media.encode.chunks import encode_chunk, plan_chunks
from vodflow.media.encode.codecs import codec_ladder, modern_ffmpeg
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.multicodec import track_path
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.encode.watermark import Watermark, on_pictures, placement, probe_image
from vodflow.media.options import EncoderSettings
from vodflow.media.pictures.thumbnails import choose_poster, picture_outputs, plan_pictures
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
WHITE_Y = 235  # limited-range luma of the mark's white
MARK_ALPHA = 128 / 255  # the PNG's own alpha
SETTINGS = EncoderSettings(preset="veryfast")


def make_source(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",  # noqa: S603
                    "color=c=0x404040:s=640x360:r=25:d=3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


def make_mark(path: Path, size: str = "100x50", alpha: float = MARK_ALPHA) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",  # noqa: S603
                    f"color=c=white:s={size},format=rgba,colorchannelmixer=aa={alpha:.6f}", "-frames:v", "1",
                    str(path)], check=True)
    return path


def luma(path: Path, width: int, height: int, at: float = 1.5) -> bytes:
    """One decoded frame's luma plane in limited range (``gray`` would stretch it; a JPEG's full range is brought
    down to it), by the modern ffmpeg, which decodes TS, fMP4 and AV1 alike."""
    out = subprocess.run([modern_ffmpeg(), "-v", "error", "-i", str(path), "-ss", f"{at}", "-frames:v", "1",  # noqa: S603
                          "-vf", "scale=out_range=tv,format=yuv420p", "-f", "rawvideo", "-"],
                         capture_output=True, check=True).stdout
    assert len(out) == width * height * 3 // 2, f"{path}: {len(out)} bytes"
    return out[:width * height]


def compare(plain: bytes, marked: bytes, width: int, height: int, mark: Watermark) -> dict[str, float]:
    """The changed pixels' bounding box against the planned box, the worst change outside it, and the opacity
    measured inside it (luma moved towards white by alpha × opacity)."""
    box = placement(mark, width, height)
    changed = [(i % width, i // width) for i in range(width * height) if abs(marked[i] - plain[i]) > 12]
    assert changed, "no watermark found"
    xs, ys = [x for x, _ in changed], [y for _, y in changed]
    found = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    planned = (box.x, box.y, box.x + box.width, box.y + box.height)
    error = max(abs(a - b) for a, b in zip(found, planned, strict=True))
    outside = max(abs(marked[y * width + x] - plain[y * width + x]) for y in range(height) for x in range(width)
                  if not (box.x - 2 <= x < box.x + box.width + 2 and box.y - 2 <= y < box.y + box.height + 2))
    inner = [y * width + x for y in range(box.y + 3, box.y + box.height - 3)
             for x in range(box.x + 3, box.x + box.width - 3)]
    alphas = [(marked[i] - plain[i]) / (WHITE_Y - plain[i]) for i in inner]
    return {"box_error_px": error, "outside_max": outside, "opacity": sum(alphas) / len(alphas)}


@pytest.fixture(scope="module")
def encodes(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("watermark")
    src = make_source(tmp / "grey.mp4")
    source = probe(str(src), src.stat().st_size, src.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    top = plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions[0]
    ladder = [top, replace(top, name="180p", width=320, height=180, video_kbps=300, maxrate_kbps=450,
                           bufsize_kbits=600)]
    av1 = list(codec_ladder(tuple(ladder), "av1"))
    png = make_mark(tmp / "mark.png")
    width, height = probe_image(str(png))
    mark = Watermark(width=width, height=height, position="bottom-right", margin=0.05, size=0.2, opacity=0.8,
                     path=str(png))
    pictures = plan_pictures(source.width, source.height, source.duration, source.fps)
    runs = {}
    for name, marks in (("plain", ()), ("marked", (mark,))):
        root = tmp / name
        (root / "thumbs").mkdir(parents=True)
        encode_renditions(str(src), str(root / "hls"), source, ladder, SETTINGS, cmaf_renditions=av1,
                          cmaf_root=str(root / "codecs"), marks=marks,
                          extra_outputs=lambda v, r=root, m=marks: picture_outputs(
                              on_pictures(v, m, source.width, source.height), pictures, str(r / "thumbs")))
        choose_poster(str(root / "thumbs"))
        runs[name] = root
    return source, ladder, av1, mark, runs, tmp, src


def outputs_of(root: Path, ladder, av1) -> list[tuple[str, Path, int, int]]:
    return ([(r.name, root / "hls" / r.name / "index.m3u8", r.width, r.height) for r in ladder]
            + [(r.name, Path(track_path(str(root / "codecs"), r.name)), r.width, r.height) for r in av1])


def test_mark_on_every_rendition_of_every_codec(encodes) -> None:
    _source, ladder, av1, mark, runs, _tmp, _src = encodes
    expected = MARK_ALPHA * mark.opacity
    report = {}
    for (name, plain, width, height), (_, marked, _, _) in zip(outputs_of(runs["plain"], ladder, av1),
                                                               outputs_of(runs["marked"], ladder, av1), strict=True):
        facts = compare(luma(plain, width, height), luma(marked, width, height), width, height, mark)
        report[name] = facts
        assert facts["box_error_px"] <= 2, (name, facts)
        assert facts["outside_max"] <= 4, (name, facts)  # encoding noise on flat grey, nothing more
        assert abs(facts["opacity"] - expected) <= 0.05 * expected, (name, facts, expected)
    print({name: {k: round(v, 4) for k, v in facts.items()} for name, facts in report.items()}, expected)


def test_poster_untouched_by_default(encodes) -> None:
    *_, runs, _tmp, _src = encodes
    assert (runs["plain"] / "thumbs" / "poster.jpg").read_bytes() == (runs["marked"] / "thumbs" /
                                                                       "poster.jpg").read_bytes()
    assert sorted(p.name for p in (runs["plain"] / "thumbs").iterdir()) == sorted(
        p.name for p in (runs["marked"] / "thumbs").iterdir())


def test_chunk_puts_the_mark_at_the_same_place(encodes) -> None:
    source, ladder, _av1, mark, runs, tmp, src = encodes
    chunks = plan_chunks(source.duration, source.fps, 6)
    files = encode_chunk(str(src), str(tmp / "chunk"), source, chunks[0], ladder[1:], SETTINGS, marks=(mark,))
    r = ladder[1]
    whole = luma(runs["plain"] / "hls" / r.name / "index.m3u8", r.width, r.height)
    facts = compare(whole, luma(Path(files[r.name]), r.width, r.height), r.width, r.height, mark)
    assert facts["box_error_px"] <= 2 and abs(facts["opacity"] - MARK_ALPHA * mark.opacity) <= 0.05 * 0.4


def test_poster_marked_when_asked(encodes, tmp_path) -> None:
    """``poster: true``: the pictures' branch carries the mark, placed on the poster as on a rendition its size."""
    import ffmpeg

    from vodflow.media.encode.ffmpeg import ffmpeg_command, output_grid

    source, _ladder, _av1, mark, runs, _tmp, src = encodes
    asked = replace(mark, poster=True)
    pictures = plan_pictures(source.width, source.height, source.duration, source.fps)
    video = output_grid(ffmpeg.input(str(src))["v:0"], source.fps)
    outputs = picture_outputs(on_pictures(video, (asked,), source.width, source.height), pictures, str(tmp_path))
    subprocess.run(ffmpeg_command(ffmpeg.merge_outputs(*outputs)), check=True)  # noqa: S603
    choose_poster(str(tmp_path))
    width, height = pictures.poster_size
    facts = compare(luma(runs["plain"] / "thumbs" / "poster.jpg", width, height, at=0),
                    luma(tmp_path / "poster.jpg", width, height, at=0), width, height, asked)
    assert facts["box_error_px"] <= 2 and abs(facts["opacity"] - MARK_ALPHA * mark.opacity) <= 0.05 * 0.4, facts


def test_an_hdr_rendition_gets_the_mark_at_graphics_white(tmp_path) -> None:
    """A PQ source: the H.264 rendition (tone-mapped SDR) has the opaque white mark at video white (8-bit luma 235);
    the AV1 rendition that keeps PQ has it at BT.2408's graphics white, 58 % of the signal (10-bit luma
    64 + 0.58 × 876 ≈ 572), not at the 10,000 cd/m² that the PNG's white would be left as it is."""
    import struct

    from vodflow.devtools.samples import make_hdr_sample

    path = Path(make_hdr_sample(str(tmp_path / "pq.mp4"), width=320, height=180, duration=2.0, audio=False))
    source = probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    ladder = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)[:1]
    pq = list(codec_ladder(tuple(ladder), "av1", "PQ"))
    png = make_mark(tmp_path / "white.png", "64x32", 1.0)
    mark = Watermark(width=64, height=32, position="top-left", size=0.25, margin=0.05, path=str(png))
    encode_renditions(str(path), str(tmp_path / "hls"), source, ladder, SETTINGS, cmaf_renditions=pq,
                      cmaf_root=str(tmp_path / "codecs"), marks=(mark,))
    r = ladder[0]
    box = placement(mark, r.width, r.height)
    inner = [y * r.width + x for y in range(box.y + 2, box.y + box.height - 2)
             for x in range(box.x + 2, box.x + box.width - 2)]
    sdr = luma(tmp_path / "hls" / r.name / "index.m3u8", r.width, r.height, at=1)
    assert min(sdr[i] for i in inner) >= 230
    out = subprocess.run([modern_ffmpeg(), "-v", "error", "-i", track_path(str(tmp_path / "codecs"), pq[0].name),  # noqa: S603
                          "-ss", "1", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-"],
                         capture_output=True, check=True).stdout
    plane = struct.unpack(f"<{r.width * r.height}H", out[:2 * r.width * r.height])
    values = [plane[i] for i in inner]
    print("PQ mark luma", sum(values) / len(values), min(values), max(values), "expected", 64 + 0.58 * 876)
    assert abs(sum(values) / len(values) - (64 + 0.58 * 876)) <= 12, (min(values), max(values))
