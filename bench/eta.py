"""The encode ETA (vodflow.eta.encode_eta), measured against the real end of one real encode. Prints, asserts nothing.

A source is encoded the way a transcode item encodes it (every rendition of the ladder from one decode), and
the progress ffmpeg reports is turned into an ETA as the API does (progress over the time since the start); the
error of the ETA at 20 %, 40 %, 60 % and 80 % done is given as a fraction of the whole encode. Sized so that the
encode takes about a minute here (--duration, --height).

    .venv/bin/python bench/eta.py [--duration 30] [--height 720]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encoder import probe_file

from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.eta import encode_eta
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings

CHECKS = (20.0, 40.0, 60.0, 80.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.mp4"
        make_sample(str(src), SampleSpec(args.height * 16 // 9, args.height, args.duration, "30", audio=True))
        source = probe_file(src)
        ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio)
        reports: list[tuple[datetime, float]] = []
        started = datetime.now(UTC)
        t0 = time.monotonic()
        encode_renditions(str(src), str(Path(tmp) / "out"), source, ladder.renditions, EncoderSettings(),
                          on_progress=lambda p: reports.append((datetime.now(UTC), p)))
        ended = datetime.now(UTC)
    total = (ended - started).total_seconds()
    print(f"{args.duration:.0f} s {source.width}x{source.height} source, {len(ladder.renditions)} renditions: "
          f"encoded in {time.monotonic() - t0:.1f} s, {len(reports)} progress reports")
    for check in CHECKS:
        at, progress = next(((t, p) for t, p in reports if p >= check), (None, None))
        if at is None:
            print(f"  {check:.0f} %: no report")
            continue
        estimate = encode_eta(progress, started, at)
        error = (estimate - ended).total_seconds()
        print(f"  at {progress:5.1f} % ({(at - started).total_seconds():5.1f} s): ETA {error:+6.1f} s from the real "
              f"end = {100 * error / total:+5.1f} % of the encode")


if __name__ == "__main__":
    main()
