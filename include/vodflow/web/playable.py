"""A video's early-playback fields in the API's JSON (issue 25): what a player can start on, and when.

``playable``: the video has a published version, or its first version, still building, lists the first segment of
every rendition. ``playable_url``: the published master, else that early master (a re-run never changes what
viewers see). ``preview_url``: the building version's early master, for operators, while there is one.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from vodflow import layout
from vodflow.catalog import ACTIVE_STATUSES, Catalog
from vodflow.pipeline.early.tree import MASTER
from vodflow.settings import load_settings
from vodflow.web.isotime import iso
from vodflow.web.media import media_url


def early_master_url(request: Request, video_id: str, version: int) -> str | None:
    key = layout.early_prefix(video_id, version) + MASTER
    return media_url(request, video_id, f"s3://{load_settings().bucket}/{key}")


def playable_json(request: Request, video: dict[str, Any], catalog: Catalog | None) -> dict[str, Any]:
    """``catalog``: None when the preview need not be looked up (it is only for a building version)."""
    active = video["status"] in ACTIVE_STATUSES
    latest, early = video["latest_version"], video.get("playable_version")
    building_playable = active and early is not None and early == latest
    published = video["current_version"] is not None and video["master_uri"] is not None
    if published:
        url = media_url(request, video["id"], video["master_uri"])
    else:
        url = early_master_url(request, video["id"], early) if building_playable else None
    preview = None
    building = active and latest and latest != video["current_version"]
    if building and catalog is not None and catalog.early_tracks_of(video["id"], latest):
        preview = early_master_url(request, video["id"], latest)
    return {"playable": bool(published or building_playable), "playable_url": url,
            "playable_at": iso(video.get("playable_at")), "preview_url": preview}
