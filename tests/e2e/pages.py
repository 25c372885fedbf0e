"""A browser script (tests/browser/*.mjs) on a video's pages, in Debian's Chromium: its one JSON line of findings."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import ARTIFACTS

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"


def page_findings(stack, script: str, video_id: str) -> dict:
    """``node <script> BASE_URL admin admin VIDEO_ID SCREENSHOT_DIR``; fails the test on an error it reports."""
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["node", str(BROWSER_DIR / script), stack.airflow.base_url, "admin",  # noqa: S603
                             "admin", video_id, str(shots)], cwd=BROWSER_DIR, capture_output=True, text=True,
                            timeout=180, check=False)
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    return findings


def longest_still(samples: Iterable[tuple[float, float]]) -> float:
    """The longest a player's position stood still (moved under 0.05 s), in seconds, from its samples in order:
    (wall clock in ms, position in s)."""
    still = longest = 0.0
    for (wall_a, t_a), (wall_b, t_b) in itertools.pairwise(samples):
        still = still + (wall_b - wall_a) / 1000 if t_b - t_a < 0.05 else 0.0
        longest = max(longest, still)
    return longest
