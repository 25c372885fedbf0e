"""Checks `cpumeter.CpuMeter` against numbers the kernel gives another way. Prints both; asserts nothing.

    .venv/bin/python bench/cpucheck.py [--duration 3]

1. Reaped inside the watched session (the pipeline's case: task processes and their ffmpeg children exit and
   are waited for inside a worker's session): a shell in a session of its own runs two ffmpeg encodes in
   parallel, then a third. The meter's window closes while the shell is a zombie (exited, not yet reaped);
   then this process reaps it and its CPU, ffmpeg's included, shows in getrusage(RUSAGE_CHILDREN). Expect
   the two to agree within a few clock ticks (/proc counts in 1/100 s).
2. Reaped outside (what happens to a Postgres backend, or an orphan): the shell starts ffmpeg in a subshell that
   exits at once, so init reaps ffmpeg and no getrusage sees it; ffmpeg's own -benchmark line (its
   getrusage(RUSAGE_SELF) near the end) is the reference. Expect the meter to be short of the truth by at
   most what ffmpeg used in the last sampling interval. The reference is itself a little short: run as a
   direct child, ffmpeg's whole-process CPU (RUSAGE_CHILDREN) was 0.07-0.09 s above its -benchmark line here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchstack import children_cpu
from cpumeter import CpuMeter


def encode(out: Path, duration: float, benchmark: bool = False) -> str:
    # -benchmark prints its line at the info level
    return " ".join(["ffmpeg", "-nostdin", "-hide_banner", "-nostats",
                     *(["-loglevel", "info", "-benchmark"] if benchmark else ["-loglevel", "error"]),
                     "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={duration}",
                     "-c:v", "libx264", "-preset", "veryfast", "-threads", "2", "-y", str(out)])


def in_session(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", script], start_new_session=True)  # noqa: S603 - fixed argument list


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vodflow-cpucheck-"))
    roots: dict[int, str] = {}
    meter = CpuMeter(lambda: dict(roots), postgres_url=None, redis_url=None)

    before = children_cpu()
    shell = in_session(f"sleep 0.5; {encode(work / 'a.mp4', args.duration)} & "
                       f"{encode(work / 'b.mp4', args.duration)} & wait; {encode(work / 'c.mp4', args.duration)}")
    roots[shell.pid] = "shell"
    with meter.window() as usage:
        os.waitid(os.P_PID, shell.pid, os.WEXITED | os.WNOWAIT)  # exited; left a zombie, not reaped
    assert shell.wait() == 0
    rusage = children_cpu() - before
    print(f"1. reaped in the session: meter {usage.seconds:.3f} CPU s ({usage.breakdown()}); "
          f"getrusage(RUSAGE_CHILDREN) {rusage:.3f} CPU s; difference {usage.seconds - rusage:+.3f} s")

    log = work / "orphan.log"
    shell = in_session(f"sleep 0.5; ({encode(work / 'd.mp4', args.duration, benchmark=True)} 2>{log} &); sleep 0.2")
    roots.clear()
    roots[shell.pid] = "shell"
    with meter.window() as usage:
        deadline = time.monotonic() + 60 * args.duration
        while "bench: utime" not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no -benchmark line in {log}")
            time.sleep(0.05)
        time.sleep(0.2)  # ffmpeg prints its -benchmark line just before it exits
    shell.wait()
    found = re.search(r"utime=([\d.]+)s stime=([\d.]+)s", log.read_text())
    reference = float(found.group(1)) + float(found.group(2))
    print(f"2. reaped outside (orphan): meter {usage.seconds:.3f} CPU s; ffmpeg -benchmark {reference:.3f} CPU s "
          f"(ffmpeg alone; the meter also has the shells); difference {usage.seconds - reference:+.3f} s "
          f"(interval {meter.interval} s)")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
