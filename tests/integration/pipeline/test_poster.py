"""The poster a published video gets, through the pipeline's steps (real ffmpeg, S3 over HTTP, the catalog): a
clip that opens on black gets a picture, whole or chunked, and only the chosen poster reaches the bucket."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from pathlib import Path

import pytest

from vodflow import layout
from vodflow.media.pictures.thumbnails import POSTER_CANDIDATES

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def black_lead_in(path: Path, black: float, duration: float, black_from: float = 0.0) -> Path:
    """testsrc2 (with noise, as camera footage) under a black box for the first ``black`` seconds (or from
    ``black_from`` to ``black``)."""
    picture = (f"testsrc2=size=640x360:rate=30,noise=alls=6:allf=t,"
               f"drawbox=c=black:t=fill:enable='gte(t,{black_from})*lt(t,{black})'")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",  # noqa: S603
                    "-i", picture, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(duration),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-ac", "2", str(path)], check=True)
    return path


def mean_luma(picture: Path, frame: int = 0) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-f", "lavfi", "-i",  # noqa: S603
                          f"movie={picture},signalstats", "-show_entries", "frame_tags=lavfi.signalstats.YAVG",
                          "-of", "json"], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["frames"][frame]["tags"]["lavfi.signalstats.YAVG"])


# 4 s: the five candidates (0.4 s to 2.4 s) are three black frames and two pictures, and the most representative
# of them by histogram (ffmpeg's thumbnail filter) was black. 20 s in 10 s chunks: candidates 2 s to 4 s, the
# first four black (the fifth, at 4 s, is a picture), all in chunk 00.
@pytest.mark.parametrize("black,duration,chunk_seconds", [(1.5, 4.0, None), (3.8, 20.0, 10)])
def test_a_clip_that_opens_on_black_gets_a_picture_as_its_poster(services, tmp_path, black, duration,
                                                                 chunk_seconds):
    clip = black_lead_in(tmp_path / "black-first.mp4", black, duration)
    assert mean_luma(clip) < 20  # the source's first frame is black (limited range: 16)
    request = {"source": upload(services, clip, f"uploads/{uuid.uuid4().hex[:6]}/black-first.mp4"),
               "ladder": ["360p"]}
    if chunk_seconds:
        request["chunk_seconds"] = chunk_seconds
    run = run_all(services, request, f"run-poster-{uuid.uuid4().hex[:6]}")
    assert [item.label for item in run["items"]][1:2] == (["chunk 00"] if chunk_seconds else [])
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert video["status"] == "ready" and video["poster_uri"].endswith("/v1/thumbs/poster.jpg")
    thumbs = sorted(k.rsplit("/", 1)[1] for k in services.storage.list_keys(layout.thumbs_prefix(video_id, 1)))
    assert thumbs[-1] == "poster.jpg" and all(name[:3].isdigit() for name in thumbs[:-1]), thumbs  # no candidate
    poster = tmp_path / "poster.jpg"
    services.storage.client.download_file("vodflow", layout.thumbs_prefix(video_id, 1) + "poster.jpg", str(poster))
    # testsrc2's picture averages ~125 (full range, as a JPEG is); black is 0.
    assert mean_luma(poster) > 80, "the poster is (near-)black"


def test_a_chunked_run_chooses_its_poster_among_all_candidates_when_they_would_straddle_a_seam(
        services, tmp_path, caplog):
    """58 s in 6 s chunks: the poster time, 5.8 s, is 0.2 s before the first seam, so the candidates (5.8 s to
    7.8 s) straddled it; chunk 00 wrote only the first, black here, and it became the poster. The window now
    lies inside chunk 00 (4 s to 6 s): five candidates, and a picture wins."""
    clip = black_lead_in(tmp_path / "black-at-seam.mp4", 6.2, 58.0, black_from=5.5)
    assert mean_luma(clip, 174) < 20  # frame 174 (5.8 s) is black
    request = {"source": upload(services, clip, f"uploads/{uuid.uuid4().hex[:6]}/black-at-seam.mp4"),
               "ladder": ["360p"], "chunk_seconds": 6}
    with caplog.at_level(logging.INFO, logger="vodflow.media.pictures.thumbnails"):
        run = run_all(services, request, f"run-poster-{uuid.uuid4().hex[:6]}")
    assert [item.label for item in run["items"]][1:3] == ["chunk 00", "chunk 01"]
    chosen = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Poster: ")]
    assert len(chosen) == 1 and f" of {POSTER_CANDIDATES} candidates" in chosen[0], chosen
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    poster = tmp_path / "poster.jpg"
    services.storage.client.download_file("vodflow", layout.thumbs_prefix(video_id, 1) + "poster.jpg", str(poster))
    assert mean_luma(poster) > 80, "the poster is (near-)black"
