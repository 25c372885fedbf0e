"""What each optional output adds to a run, measured: seconds (wall, and ffmpeg's CPU, which a busy machine
cannot distort) and bytes per kind for a 1080p source with the default ladder. Prints, asserts nothing. The
handlers run as the pipeline runs them (on the local encode, after it), minus the uploads; the encode itself is
timed for scale.

    .venv/bin/python bench/outputs.py [--duration 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.media.source.probe import probe
from vodflow.pipeline.outputs import HANDLERS, EncodedRendition, OutputContext
from vodflow.pipeline.services import Job
from vodflow.pipeline.work import EncodePlan
from vodflow.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_sample(os.path.join(tmp, "src.mp4"), SampleSpec(1920, 1080, args.duration, "30", audio=True))
        info = probe(src, os.path.getsize(src), Path(src).read_bytes()[:4096], protocols="file")
        ladder = plan_ladder(info.width, info.height, info.fps, info.has_audio, "default")
        plan = EncodePlan(renditions=tuple(ladder.renditions), duration=info.duration,
                          pictures=plan_pictures(info.width, info.height, info.duration, info.fps))
        started, cpu = time.monotonic(), _children_cpu()
        measured = encode_renditions(src, os.path.join(tmp, "hls"), info, list(plan.renditions), EncoderSettings())
        encode_seconds, encode_cpu = time.monotonic() - started, _children_cpu() - cpu
        hls_bytes = sum(m.bytes for m in measured)
        print(f"encode (4 renditions, TS HLS): {encode_seconds:.2f} s wall, {encode_cpu:.2f} s CPU (ffmpeg), "
              f"{hls_bytes / 1e6:.2f} MB")
        job = Job(video_id="bench", version=1, run_id="bench", source_uri="s3://vodflow/uploads/src.mp4", etag="",
                  size=0, title="Bench clip", ladder="default", outputs=["hls", *HANDLERS],
                  mp4_renditions="top")
        encoded = [EncodedRendition(r, m, os.path.join(tmp, "hls", m.name))
                   for r, m in zip(plan.renditions, measured, strict=True)]
        for kind, handler in HANDLERS.items():
            ctx = OutputContext(job, plan, Settings(), os.path.join(tmp, "out", kind))
            os.makedirs(ctx.workdir)
            started, cpu = time.monotonic(), _children_cpu()
            made = [f for e in encoded for f in handler.encoded(ctx, e)]
            seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
            size = sum(os.path.getsize(f.path) for f in made)
            print(f"{kind:>10}: +{seconds:.2f} s wall, +{cpu:.2f} s CPU ({100 * cpu / encode_cpu:.1f} % of the "
                  f"encode's), "
                  f"{size / 1e6:.3f} MB ({100 * size / hls_bytes:.1f} % of the HLS bytes): "
                  + (", ".join(f"{f.key} {os.path.getsize(f.path) / 1e6:.3f} MB" for f in made) if len(made) <= 6
                     else f"{len(made)} files"))


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes (the ffmpegs): steady under a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
