"""Start one transcode per new object under the watched prefix, exactly once per (bucket, key, etag).

Why a deferrable sensor that polls S3, not S3 event notifications: it works with any S3 endpoint (MinIO
cannot feed SQS, and AWS needs extra infrastructure for it), and Airflow 3 has no S3-native event trigger for
assets (where S3 can notify SQS, ``vodflow.triggers.events`` is the event-driven alternative, same claims).
While nothing arrives, the only cost is a few LISTs per poll in the triggerer: no worker slot is held. It lists
only what can be new: date partitions (``uploads/YYYY/MM/DD/…``) from the watermark's day on (StartAfter),
so millions of old uploads cost no LIST pages; other folders are listed whole.

Exactly once does not rest on the sensor: the catalog's ``uploads`` table has (bucket, key, etag) as its
primary key and the insert that wins it is the claim; the run id is derived from the video id, so starting a
claimed run twice is a no-op. Overlapping watcher runs, a restarted scheduler or triggerer, or the same
object listed twice therefore never start a second run; new content under the same key has a new etag and
is a new video.

An app that starts its own run (the checked trigger) claims the object first, as ``starting``: the watcher
leaves it alone, and it becomes ``known`` once the run exists. A trigger that fails (Airflow's API refusing, the
database locked) is never a skipped upload: the claim becomes the watcher's (``claimed``, the app's run id,
video id and checked conf) and the next poll starts it — the deferred sensor fires for claims left to start, not
only for new objects; one left ``starting`` by a process that died mid-trigger is taken over after
``APP_TRIGGER_GRACE``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from vodflow import layout
from vodflow.catalog import (
    UPLOAD_CLAIMED,
    UPLOAD_KNOWN,
    UPLOAD_TRIGGERED,
    Catalog,
    UploadObject,
    catalog_for_connection,
)
from vodflow.dag_ids import APP_RUN_PREFIX, UPLOAD_RUN_PREFIX
from vodflow.errors import BadInput, VodflowError
from vodflow.request import RequestError, check_fields
from vodflow.settings import Settings, load_settings
from vodflow.storage import Storage

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RUNS_PER_BATCH = 100
CATALOG_WARN_SECONDS = 60.0  # a catalog down is logged once a minute, not at every poll
RUN_EXISTS = (UPLOAD_KNOWN, UPLOAD_TRIGGERED)  # an app's claim in these states: its run was made


@dataclass(frozen=True)
class Watermark:
    """What the watcher has already handled: objects modified since ``since`` are checked one by one."""

    since: datetime
    seen: frozenset[tuple[str, str]]


def upload_run_id(video_id: str) -> str:
    return f"{UPLOAD_RUN_PREFIX}{video_id}"


def video_id_for(obj: UploadObject) -> str:
    return layout.derive_video_id(obj.bucket, obj.key, obj.etag)


def is_watchable(key: str, prefix: str) -> bool:
    """An object worth a transcode: under the prefix, not a folder marker, a key the pipeline accepts."""
    if not key.startswith(prefix) or key.endswith("/"):
        return False
    try:
        layout.parse_source_uri(f"s3://bucket/{key}")
    except ValueError:
        return False
    return True


def new_objects(listing: Iterable[dict[str, Any]], bucket: str, prefix: str, mark: Watermark,
                settled_before: datetime) -> list[UploadObject]:
    """Objects in an S3 listing that the watcher has not handled and that are old enough to act on."""
    found = []
    for item in listing:
        modified = item["LastModified"]
        etag = str(item.get("ETag", "")).strip('"')
        if (modified >= mark.since and modified <= settled_before and is_watchable(item["Key"], prefix)
                and (item["Key"], etag) not in mark.seen):
            found.append(UploadObject(bucket, item["Key"], etag, int(item.get("Size", 0)), modified))
    return found


_YEAR_FOLDER = re.compile(r"^[0-9]{4}/$")
_DATED = re.compile(r"^[0-9]{4}/")


@dataclass(frozen=True)
class ListRequest:
    """One S3 LIST (paginated): under ``prefix``, after ``start_after``; ``dated_only`` stops at the first key
    that is not in a ``YYYY/`` folder (the sorted listing has left the date partitions)."""

    prefix: str
    start_after: str = ""
    delimiter: str = ""
    dated_only: bool = False


def listing_plan(prefix: str, since: datetime, top: dict[str, Any]) -> list[ListRequest]:
    """What to LIST after the top-level listing of ``prefix`` (``top``: one delimited page set): only what can
    be new. ``<prefix>YYYY/MM/DD/…`` (what ``POST /vodflow/api/uploads`` makes: the grant's UTC day) is listed
    from the day before ``since`` on (StartAfter), so old partitions cost nothing however many objects they
    hold; any other folder is listed whole. Objects directly under the prefix come with ``top``."""
    requests: list[ListRequest] = []
    dated = False
    for folder in top.get("CommonPrefixes", []):
        name = folder["Prefix"][len(prefix):]
        if _YEAR_FOLDER.match(name):
            dated = True
        else:
            requests.append(ListRequest(folder["Prefix"]))
    if dated:
        day_before = since - timedelta(days=1) if since > EPOCH + timedelta(days=1) else EPOCH
        requests.insert(0, ListRequest(prefix, start_after=f"{prefix}{day_before:%Y/%m/%d}", dated_only=True))
    return requests


def take(page: dict[str, Any], request: ListRequest, prefix: str, into: list[dict[str, Any]]) -> bool:
    """Add a LIST page's objects; False once a dated-only listing has left the date partitions."""
    for item in page.get("Contents", []):
        if request.dated_only and not _DATED.match(item["Key"][len(prefix):]):
            return False
        into.append(item)
    return True


def list_candidates(client: Any, bucket: str, prefix: str, since: datetime) -> list[dict[str, Any]]:
    """Objects under ``prefix`` that can be new since ``since``, in a bounded number of LIST calls (sync)."""
    paginator = client.get_paginator("list_objects_v2")
    found: list[dict[str, Any]] = []
    top: dict[str, Any] = {"CommonPrefixes": []}
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found.extend(page.get("Contents", []))
        top["CommonPrefixes"] += page.get("CommonPrefixes", [])
    for request in listing_plan(prefix, since, top):
        args = {"Bucket": bucket, "Prefix": request.prefix, **({"StartAfter": request.start_after}
                                                               if request.start_after else {})}
        for page in paginator.paginate(**args):
            if not take(page, request, prefix, found):
                break
    return [{**obj, "ETag": str(obj.get("ETag", "")).strip('"')} for obj in found]


async def alist_candidates(client: Any, bucket: str, prefix: str, since: datetime) -> list[dict[str, Any]]:
    """The same with an aiobotocore client (the triggerer)."""
    paginator = client.get_paginator("list_objects_v2")
    found: list[dict[str, Any]] = []
    top: dict[str, Any] = {"CommonPrefixes": []}
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found.extend(page.get("Contents", []))
        top["CommonPrefixes"] += page.get("CommonPrefixes", [])
    for request in listing_plan(prefix, since, top):
        args = {"Bucket": bucket, "Prefix": request.prefix, **({"StartAfter": request.start_after}
                                                               if request.start_after else {})}
        async for page in paginator.paginate(**args):
            if not take(page, request, prefix, found):
                break
    return found


def watermark(catalog: Catalog, settings: Settings) -> Watermark:
    """Everything claimed so far, as a time plus the handled objects near it.

    S3 may stamp an object with the time its upload began, so an object can appear with a Last-Modified a
    little older than the newest one already claimed: the lookback covers that (at least a presigned URL's life).
    """
    latest = catalog.latest_upload(settings.bucket)
    since = latest - timedelta(seconds=settings.watch_lookback_seconds) if latest else EPOCH
    return Watermark(since, frozenset(catalog.seen_uploads(settings.bucket, since)))


def settled_before(settings: Settings) -> datetime:
    """Leave a just-landed object alone briefly, so an app that uploads and triggers the run itself goes first
    (the watcher then records the object as known instead of starting a second run)."""
    return datetime.now(UTC) - timedelta(seconds=settings.watch_settle_seconds)


class NewUploadsTrigger(BaseTrigger):
    """Polls the watched prefix from the triggerer; fires once an unhandled object has settled."""

    def __init__(self, aws_conn_id: str, bucket: str, prefix: str, since: str, seen: list[list[str]],
                 settle_seconds: float, poll_interval: float, catalog_conn_id: str | None = None) -> None:
        super().__init__()
        self.aws_conn_id, self.bucket, self.prefix = aws_conn_id, bucket, prefix
        self.since, self.seen = since, seen
        self.settle_seconds, self.poll_interval = settle_seconds, poll_interval
        self.catalog_conn_id = catalog_conn_id  # also fire for claims left to start (an app's failed trigger)
        self._catalog_warned = -CATALOG_WARN_SECONDS  # when the catalog's failure was last logged

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("vodflow.triggers.watch.NewUploadsTrigger", {
            "aws_conn_id": self.aws_conn_id, "bucket": self.bucket, "prefix": self.prefix, "since": self.since,
            "seen": self.seen, "settle_seconds": self.settle_seconds, "poll_interval": self.poll_interval,
            "catalog_conn_id": self.catalog_conn_id})

    async def _pending_claims(self) -> int:
        """Claims left to start, asked in a thread: the first call fetches the connection, builds the engine and
        migrates, which must not stall the triggerer's event loop (every trigger in it). The catalog is this
        trigger's extra, not its job: while it fails, the answer is "none" (a warning a minute; the next poll asks
        again) and new objects are still reported — one attempt per poll, no reconnect wait in between."""
        if not self.catalog_conn_id:
            return 0
        try:
            return await asyncio.to_thread(_count_pending_claims, self.catalog_conn_id, self.bucket)
        except Exception as exc:  # the database down or refusing, the connection missing: S3 polling goes on
            if time.monotonic() - self._catalog_warned < CATALOG_WARN_SECONDS:
                return 0
            self._catalog_warned = time.monotonic()
            log.warning("Catalog %r unavailable while watching s3://%s/%s (%s: %s); claims left to start are "
                        "checked again at the next poll", self.catalog_conn_id, self.bucket, self.prefix,
                        type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            return 0

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        mark = Watermark(datetime.fromisoformat(self.since), frozenset((k, e) for k, e in self.seen))
        async with await hook.get_async_conn() as client:
            while True:
                listing = await alist_candidates(client, self.bucket, self.prefix, mark.since)
                cutoff = datetime.now(UTC) - timedelta(seconds=self.settle_seconds)
                found = new_objects(listing, self.bucket, self.prefix, mark, cutoff)
                if found:
                    yield TriggerEvent({"status": "found", "count": len(found), "keys": [o.key for o in found[:20]]})
                    return
                if await self._pending_claims():
                    yield TriggerEvent({"status": "pending claims"})
                    return
                await asyncio.sleep(self.poll_interval)


def _count_pending_claims(conn_id: str, bucket: str) -> int:
    return catalog_for_connection(conn_id, reconnect_seconds=0).pending_claims(bucket)


class WaitForUploadsSensor(BaseSensorOperator):
    """Succeeds when there is something to start: new objects under the prefix, or claims not yet started.

    Deferrable: while nothing arrives it waits in the triggerer, not in a worker slot.
    """

    def execute(self, context: Any) -> Any:
        settings = load_settings()
        catalog = catalog_for_connection(settings.catalog_conn_id)
        storage = Storage(settings.aws_conn_id, settings.bucket)
        mark = watermark(catalog, settings)
        if catalog.pending_claims(settings.bucket):
            return {"status": "pending claims"}
        found = new_objects(list_candidates(storage.client, settings.bucket, settings.watch_prefix, mark.since),
                            settings.bucket, settings.watch_prefix, mark, settled_before(settings))
        if found:
            return {"status": "found", "count": len(found)}
        log.info("Waiting for new objects under s3://%s/%s (checking every %g s)", settings.bucket,
                 settings.watch_prefix, settings.watch_poll_seconds)
        self.defer(
            trigger=NewUploadsTrigger(settings.aws_conn_id, settings.bucket, settings.watch_prefix,
                                      mark.since.isoformat(), sorted([k, e] for k, e in mark.seen),
                                      settings.watch_settle_seconds, settings.watch_poll_seconds,
                                      settings.catalog_conn_id),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        log.info("New uploads: %s", event)
        return event


def claim_new_uploads(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Claim every unhandled object and return the ``transcode_video`` runs to start (run id + conf)."""
    settings = settings or load_settings()
    catalog = catalog_for_connection(settings.catalog_conn_id)
    storage = Storage(settings.aws_conn_id, settings.bucket)
    mark = watermark(catalog, settings)
    found = new_objects(list_candidates(storage.client, settings.bucket, settings.watch_prefix, mark.since),
                        settings.bucket, settings.watch_prefix, mark, settled_before(settings))
    claims = catalog.claim_uploads(settings.bucket, found, video_id_for, upload_run_id)
    for obj in found:
        log.info("Found s3://%s/%s (etag %s, %d bytes)", obj.bucket, obj.key, obj.etag, obj.size)
    runs = runs_for_claims(claims)
    log.info("%d new object(s); starting %d run(s)", len(found), len(runs))
    return runs


def runs_for_claims(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``transcode_video`` runs (deterministic run id + conf) for claims not yet started, a batch at a time."""
    return [{"trigger_run_id": claim["dag_run_id"], "conf": claim_conf(claim)} for claim in claims[:MAX_RUNS_PER_BATCH]]


def claim_conf(claim: dict[str, Any]) -> dict[str, Any]:
    """The conf a claim's run starts with: the object and the claim's video id — or, for an app's claim handed
    over by the checked trigger, the conf that endpoint accepted (title, callback, ladder, …), so the app gets the
    run (and the webhook) it asked for.

    Only a conf the checked trigger could have written is used: on an app's claim (its run id), naming this
    claim's object and video, every field passing the request schemas again (the callback is checked again at
    ``register``, as for any run). Anything else is not trusted: the run starts with the object alone, as any
    watcher run does."""
    source = f"s3://{claim['bucket']}/{claim['key']}"
    own = {"source": source, "video_id": claim["video_id"]}
    if not claim.get("conf"):
        return own
    try:
        if not claim["dag_run_id"].startswith(APP_RUN_PREFIX):
            raise RequestError("conf", "not an app's claim")
        conf = json.loads(claim["conf"])
        if not isinstance(conf, dict):
            raise RequestError("conf", "not a JSON object")
        if conf.get("source") != source or conf.get("video_id") not in (None, claim["video_id"]):
            raise RequestError("source", "not this claim's object or video")
        check_fields(conf)
    except ValueError as exc:  # RequestError, bad JSON; the field only: a value may hold a callback's token
        log.error("Run %s: its stored conf is not used (%s refused); starting it with the object alone",
                  claim["dag_run_id"], getattr(exc, "field", "conf"))
        return own
    return {**conf, **own}


def mark_started(run_ids: Iterable[str], settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    catalog_for_connection(settings.catalog_conn_id).mark_uploads_triggered(run_ids)


@dataclass(frozen=True)
class AppTrigger:
    """The watcher's claim on an object an app is starting a run for itself (the checked trigger), held as
    ``starting`` while Airflow is asked for the run: ``started`` once the run exists, ``hand_to_watcher`` if it
    could not be made — then the watcher starts it (same run id and video id) on its next poll, never skips it."""

    obj: UploadObject
    video_id: str
    run_id: str
    settings: Settings

    def started(self) -> None:
        catalog_for_connection(self.settings.catalog_conn_id).record_app_upload(self.obj, self.video_id, self.run_id)

    def hand_to_watcher(self) -> str | None:
        """The trigger raised: the claim's state now. ``claimed``: the watcher will start it; ``known`` or
        ``triggered``: the run exists after all (its ``register`` or the watcher got there); None: dropped (the
        watcher watches another bucket) or no longer this run's."""
        return catalog_for_connection(self.settings.catalog_conn_id).release_app_upload(
            self.obj, self.run_id, to_watcher=self.obj.bucket == self.settings.bucket)


def record_app_trigger(source: str, video_id: str | None, run_id: str, settings: Settings | None = None,
                       conf: dict[str, Any] | None = None) -> AppTrigger | None:
    """An app is starting a run for ``source`` itself (the checked trigger): write the watcher's claim now, as
    ``starting``, so the watcher never starts the object too — not even when the run's ``register`` comes later
    than ``watch_settle_seconds``. None when there is nothing to claim (no such object) or it was claimed.
    ``conf``: the run's conf as the checked trigger accepted it, kept with the claim for the watcher.

    Not ``known`` yet: the trigger after this can fail (the claim is then handed to the watcher), or the process
    can die before it ends (the watcher takes a claim left ``starting`` over after ``APP_TRIGGER_GRACE``)."""
    settings = settings or load_settings()
    location = layout.parse_source_uri(source)
    try:
        info = Storage(settings.aws_conn_id, settings.bucket).head(location)
    except BadInput:
        return None  # missing: the run itself will say so
    obj = UploadObject(location.bucket, location.key, info.etag, info.size, info.last_modified or datetime.now(UTC))
    claim = AppTrigger(obj, video_id or video_id_for(obj), run_id, settings)
    claimed = catalog_for_connection(settings.catalog_conn_id).record_app_upload(obj, claim.video_id, run_id,
                                                                                 starting=True, conf=conf)
    return claim if claimed else None


class AppTriggerFailed(VodflowError):
    """The app's run could not be started; ``handed_over``: the upload watcher will start the object instead."""

    def __init__(self, run_id: str, cause: BaseException, handed_over: bool) -> None:
        self.message = f"run {run_id} could not be started: {type(cause).__name__}: {cause}"
        Exception.__init__(self, self.message)  # retried like any fault (not Permanent); its text as before
        self.handed_over = handed_over


def start_app_run(source: str, video_id: str | None, run_id: str, trigger: Callable[[], None],
                  settings: Settings | None = None, conf: dict[str, Any] | None = None) -> None:
    """Claim the object for the app's run, then ``trigger`` it: the claim is ``known`` once the run exists;
    if ``trigger`` raises, the claim goes to the watcher (AppTriggerFailed), which starts the run on its next
    poll with the same run id — so a run that exists after all is never started twice — and with ``conf``, the
    conf the checked trigger accepted (None: the object alone). If ``trigger`` raises although the run was made
    (its claim already ``known`` or ``triggered`` under this run id), this returns as for a run started."""
    claim = record_app_trigger(source, video_id, run_id, settings, conf)
    try:
        trigger()
    except Exception as exc:
        state = claim.hand_to_watcher() if claim is not None else None
        if state in RUN_EXISTS:  # an answer lost after the run was made: "try again" would start a second run
            log.warning("Starting run %s raised %s, but the run exists (its claim is %s): it is started",
                        run_id, type(exc).__name__, state)
            return
        raise AppTriggerFailed(run_id, exc, state == UPLOAD_CLAIMED) from exc
    if claim is not None:
        try:
            claim.started()
        except Exception:  # the run exists: its register confirms the claim too, so the app is not told it failed
            log.warning("Could not confirm the claim of run %s now; its register will", run_id, exc_info=True)
