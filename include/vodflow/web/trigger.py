"""The checked way to start a transcode: ``POST /vodflow/api/videos`` with the run's conf.

Airflow's own trigger endpoint checks the conf against the DAG's Params schemas only; the plugin's root
middleware (``conf_guard``) runs ``check_conf`` in front of it, so both endpoints answer the same refusals. This
checks everything before a run exists — unknown fields, each field's schema, the source allowlist (for the
source and every caption: ``check_sources_allowed``, shared with ``register``), that a
``video_id`` that exists keeps its source (no run may replace another video's content), that every codec asked
for (``codecs``, else the setting's) is one this installation's ffmpeg encodes, and that
``callback_url`` resolves to a public address (or an allowlisted host) — and answers 400 naming the field.
``register`` repeats the source, video id and callback checks for runs started any other way (they then fail as
``invalid_request`` instead).

The app's run and the upload watcher: the claim written before the trigger is ``starting`` and becomes ``known``
only once the run exists; a trigger that fails hands the object to the watcher, which starts it on its next poll
with this conf (kept with the claim, as checked here). A trigger that raises after Airflow made the run (the claim
already ``known`` or ``triggered`` under this run id) is answered 202, as started: "try again" would start a second.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Body, Depends, HTTPException, Response

from vodflow.catalog import catalog_for_connection
from vodflow.dag_ids import APP_RUN_PREFIX, TRANSCODE_VIDEO
from vodflow.integrations.netguard import DestinationRefused, Resolver, system_resolver
from vodflow.integrations.webhooks import check_callback
from vodflow.pipeline.auto_captions import check_model
from vodflow.pipeline.prepare import check_codecs, check_sources_allowed
from vodflow.request import RequestError, check_fields, check_same_source
from vodflow.settings import Settings, load_settings
from vodflow.triggers.watch import AppTriggerFailed, start_app_run
from vodflow.web.ratelimits import Limiter

log = logging.getLogger(__name__)
router = APIRouter()
CanTrigger = Depends(requires_access_dag("POST", DagAccessEntity.RUN, TRANSCODE_VIDEO))
CATALOG_WAIT_SECONDS = 5.0  # as the plugin API: a request waits this long for a restarting catalog, then fails
SourceOf = Callable[[str], "str | None"]  # a video id → the source of that video in the catalog (None: no video)


def catalog_source_of(settings: Settings) -> SourceOf:
    """The catalog's answer to "which source is this video made from?"."""
    catalog = catalog_for_connection(settings.catalog_conn_id, CATALOG_WAIT_SECONDS)

    def source_of(video_id: str) -> str | None:
        video = catalog.get_video(video_id)
        return video["source_uri"] if video else None

    return source_of


def check_conf(conf: dict[str, Any], settings: Settings, resolver: Resolver = system_resolver,
               source_of: SourceOf | None = None) -> None:
    """RequestError (with the field) unless ``conf`` may start a run as it is."""
    if not isinstance(conf, dict):
        raise RequestError("conf", "the body must be a JSON object: the run's conf")
    check_fields(conf)
    if "source" not in conf:
        raise RequestError("source", "source is required (s3://bucket/key)")
    check_sources_allowed(conf, settings)  # the source and every caption: what register checks, as a 400 here
    check_model(conf, settings.captions_model, settings.auto_captions)  # automatic captions this host can make
    check_codecs(conf.get("codecs"), settings)  # known, and encodable by this installation's ffmpeg
    if conf.get("video_id"):
        existing = (source_of or catalog_source_of(settings))(conf["video_id"])
        check_same_source(conf["video_id"], conf["source"], existing)
    try:
        check_callback(conf.get("callback_url"), settings.webhook_allowed_hosts, resolver)
    except DestinationRefused as exc:
        raise RequestError("callback_url", str(exc)) from None


def refusal_detail(exc: RequestError) -> str:
    """The 400's detail for a refused conf (the field first), the same on every trigger endpoint."""
    return str(exc) if str(exc).startswith(exc.field) else f"{exc.field}: {exc}"


@router.post("/api/videos", status_code=202, dependencies=[CanTrigger])
def start_video(user: GetUserDep, response: Response, conf: Annotated[dict[str, Any], Body(examples=[
        {"source": "s3://vodflow/uploads/clip.mp4", "callback_url": "https://app.example.com/hooks/vodflow"}])]
                ) -> dict[str, Any]:
    """Start ``transcode_video`` for this conf after checking every field (400 names the first bad one)."""
    settings = load_settings()
    response.headers.update(Limiter(settings).admit_trigger(user))  # LimitRefused (429) before any check or run
    try:
        check_conf(conf, settings)
    except RequestError as exc:
        raise HTTPException(status_code=400, detail=refusal_detail(exc)) from None
    run_id = f"{APP_RUN_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    try:  # the watcher's claim first, so the watcher neither starts this object too nor skips it if this fails
        start_app_run(conf["source"], conf.get("video_id"), run_id, lambda: _trigger(user.get_name(), run_id, conf),
                      conf=conf)  # kept with the claim: a run the watcher has to start is the one asked for
    except AppTriggerFailed as failed:
        log.exception("Run %s for %s could not be started%s", run_id, conf["source"],
                      "; the upload watcher will start it" if failed.handed_over else "")
        reason = f"the run could not be started ({type(failed.__cause__).__name__})"
        if failed.handed_over:
            raise HTTPException(status_code=503, detail=f"{reason}; the upload watcher will start this upload on "
                                                        f"its next poll as run {run_id} (do not start it again)"
                                ) from None
        raise HTTPException(status_code=503, headers={"Retry-After": "10"}, detail=f"{reason}; try again") from None
    log.info("Run %s started by %s for %s", run_id, user.get_name(), conf["source"])
    return {"dag_run_id": run_id, "conf": conf}


def _trigger(user_name: str, run_id: str, conf: dict[str, Any]) -> None:
    from airflow.api.common.trigger_dag import trigger_dag  # here: workers import the plugin, not this
    from airflow.utils.types import DagRunTriggeredByType

    trigger_dag(TRANSCODE_VIDEO, triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=user_name,
                run_id=run_id, conf=conf, run_after=datetime.now(UTC))
