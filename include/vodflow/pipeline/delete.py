"""Deleting a video without a race: catalog mark first, media next, rows last.

The old order (check status, remove objects, then remove rows) let a run register the video between the check
and the row delete: the video then sat `ready` on a version whose media was gone. Now the video is marked
`deleting` under its row lock first — a run that starts afterwards stands down in `register`, and `publish`
refuses a deleting video — then its objects go, then its rows. A crash in between leaves it `deleting`, which
nothing picks up again; deleting it again finishes the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vodflow import layout
from vodflow.catalog import Catalog
from vodflow.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deleted:
    video_id: str
    deleted_objects: int


def delete_video(catalog: Catalog, storage: Storage, video_id: str) -> Deleted | None:
    """None when there is no such video; AlreadyActive (catalog) while a run is building it."""
    if not catalog.begin_delete(video_id):
        return None
    deleted = storage.delete_prefix(layout.video_prefix(video_id))
    catalog.delete_video(video_id)
    log.info("Deleted %s: %d objects and its catalog rows", video_id, deleted)
    return Deleted(video_id, deleted)
