"""Watermarks between the request and the encode: fetched and checked at ``prepare``, copied into our bucket, and
read back by each work item as a local file (the encode never reads a URL for its mark).

Two marks at most: the one the ``watermark`` setting imposes on every video (an operator's, so not held to the
source allowlist; a request cannot remove it) and the request's own, overlaid above it. Each image is checked before
anything decodes it: its size from the HEAD (≤ 2 MiB), at most that many bytes read, then the PNG header (a PNG,
≤ 4096×4096, with an alpha channel), then ffprobe on the copy. Any failure is ``invalid_request`` with the reason.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from vodflow import errors, layout
from vodflow.errors import BadInput
from vodflow.layout import S3Location, parse_source_uri
from vodflow.media.encode import watermark
from vodflow.media.encode.watermark import Watermark
from vodflow.pipeline.services import Job, Services
from vodflow.request import RequestError, check_fields

SETTING = "watermark"


def imposed(text: str) -> dict[str, Any] | None:
    """The ``watermark`` setting (JSON, like a request's ``watermark``; empty: none), checked like a request's;
    a bad setting is a RequestError naming it."""
    if not text.strip():
        return None
    try:
        spec = json.loads(text)
        check_fields({"watermark": spec})
    except ValueError as exc:  # RequestError and JSONDecodeError
        raise RequestError("watermark", f"the watermark setting is not a valid watermark: {exc}") from None
    return spec


def fetch_watermarks(services: Services, job: Job, params: Mapping[str, Any]) -> Job:
    """The job with its checked marks (imposed first), each copied to the version's parked files."""
    specs = [spec for spec in (imposed(services.settings.watermark), params.get("watermark")) if spec]
    marks = tuple(_fetched(services, job, index, spec) for index, spec in enumerate(specs))
    return replace(job, watermarks=marks) if marks else job


def _fetched(services: Services, job: Job, index: int, spec: Mapping[str, Any]) -> Watermark:
    where = parse_source_uri(spec["image"])
    data = _read(services, where)
    width, height = watermark.check_header(data)
    key = f"{layout.chunks_prefix(job.video_id, job.version)}watermark-{index}.png"
    with tempfile.TemporaryDirectory(dir=_scratch(services)) as folder:
        path = os.path.join(folder, "mark.png")
        with open(path, "wb") as out:
            out.write(data)
        if watermark.probe_image(path) != (width, height):
            raise watermark.refused("ffprobe and the PNG header disagree on the image's size")
        services.storage.upload_file(path, key)
    return Watermark(width=width, height=height, position=spec.get("position", "bottom-right"),
                     margin=float(spec.get("margin", 0.03)), size=float(spec.get("size", 0.12)),
                     opacity=float(spec.get("opacity", 1.0)), poster=bool(spec.get("poster", False)), image=key)


def _read(services: Services, where: S3Location) -> bytes:
    """The image's bytes, never more than the limit (the HEAD says first; the object may change after it)."""
    try:
        watermark.check_size(services.storage.head(where).size)
        data = services.storage.read_head(where, watermark.MAX_BYTES + 1)
    except BadInput as exc:
        if exc.code != errors.SOURCE_MISSING:
            raise
        raise watermark.refused(f"there is no image at {where.uri}") from exc
    except ClientError as exc:
        raise watermark.refused(f"the image {where.uri} cannot be read ({exc.response['Error'].get('Code')})"
                                ) from exc
    watermark.check_size(len(data))
    return data


def _scratch(services: Services) -> str:
    os.makedirs(services.settings.scratch_dir, exist_ok=True)
    return services.settings.scratch_dir


def local_marks(services: Services, job: Job, folder: str) -> tuple[Watermark, ...]:
    """The job's marks as local files in ``folder``, for the encode."""
    marks = []
    for index, mark in enumerate(job.watermarks):
        path = os.path.join(folder, f"watermark-{index}.png")
        services.storage.download(S3Location(services.storage.bucket, mark.image), path)
        marks.append(replace(mark, path=path))
    return tuple(marks)
