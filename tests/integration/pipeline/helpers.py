"""Helpers shared by the pipeline tests: S3 uploads, every step in order, packets of a published playlist."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from vodflow import pipeline


def packets(playlist: Path, kind: str) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries",  # noqa: S603
                          "packet=pts_time", "-of", "json", str(playlist)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]


def upload(services: pipeline.Services, path: Path, key: str) -> str:
    services.storage.client.upload_file(str(path), "vodflow", key)
    return f"s3://vodflow/{key}"


def run_all(services: pipeline.Services, params: dict, run_id: str) -> dict:
    steps: list[str] = []
    job, probed, plan, items = pipeline.prepare(params, run_id, lambda step, job: steps.append(step), services)
    assert steps == ["register", "probe", "plan"]
    # Through the XCom codecs, as the DAG's tasks call them.
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    result = pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items], results,
                                    services)
    return {"job": job, "probed": probed, "result": result, "items": items}


def faststart_sample_and_cut(folder: Path, seconds: float, kept_fraction: float) -> tuple[Path, Path]:
    """A 320x180 sample with its index up front, and a copy holding only its first ``kept_fraction`` of bytes
    (a cut-off upload or a read that broke off: the header still describes the whole)."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    whole = Path(make_sample(str(folder / "whole.mp4"), SampleSpec(320, 180, seconds, "30", audio=True,
                                                                    extra_output_args=("-movflags", "+faststart"))))
    cut = folder / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * kept_fraction)])
    return whole, cut
