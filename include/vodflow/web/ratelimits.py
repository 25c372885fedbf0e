"""Per-user rate limits and quotas on the entry points that start work (issue 26), checked before any side effect.

Who: the authenticated Airflow user (``get_name()``, what Airflow records as a run's ``triggering_user_name``). An
app is the Airflow user it signs in as (a service account), so "per app" is "per user"; users with a role in
``limits_exempt_roles`` (Admin) are not limited. What, each 0 = unlimited:

- ``rate_uploads_per_minute``: upload grants (presigned PUT or multipart), ``POST /vodflow/api/uploads``;
- ``rate_triggers_per_minute``: Airflow's ``POST /api/v2/dags/transcode_video/dagRuns`` (``conf_guard``), the
  checked ``POST /vodflow/api/videos`` and ``POST /vodflow/api/videos/{id}/retry``: every call by a caller
  allowed to trigger counts, one with a conf then refused too (it still cost a DNS lookup and catalog reads);
- ``quota_videos_in_flight``: the user's ``transcode_video`` runs queued or running (Airflow's metadata DB, which
  every api-server shares; a run the upload watcher started for a presigned upload is the watcher's, not counted);
  a new trigger or grant beyond it → 429 (waiting fixes it) with ``Retry-After: IN_FLIGHT_RETRY_SECONDS``;
- ``quota_bytes_per_day``: bytes granted for upload (the declared size, which S3 enforces) per UTC day → 403.

Rates answer 429 with ``Retry-After`` (seconds to the window's end) and the RateLimit fields, also on success:
``RateLimit-Policy`` / ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-07 and later: ``"<policy>";q=;w=`` and
``"<policy>";r=;t=``) and the older drafts' ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (delta seconds),
which most clients read. Every refusal's JSON body names the limit (its setting), its value and the use, and is
counted by reason in the catalog (``vodflow_limit_refusals_total{reason=...}``). The in-flight count is read, then
the run is made: concurrent triggers of one user may pass it by the few in between (a guard, not an invariant).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from vodflow.catalog import catalog_for_connection
from vodflow.catalog.counters import Take, count_refusal, take_all
from vodflow.errors import Refused
from vodflow.settings import Settings, load_settings

log = logging.getLogger(__name__)
MINUTE, DAY = 60, 86400
UPLOADS, TRIGGERS, BYTES = "uploads", "triggers", "bytes"  # counter buckets, also the header policies' names
SETTING_OF = {UPLOADS: "rate_uploads_per_minute", TRIGGERS: "rate_triggers_per_minute", BYTES: "quota_bytes_per_day"}
IN_FLIGHT = "quota_videos_in_flight"
IN_FLIGHT_RETRY_SECONDS = 60  # a video in flight takes minutes; a client asking again each minute is enough
CATALOG_WAIT_SECONDS = 5.0  # as the plugin API: a request waits this long for a restarting catalog


@dataclass(frozen=True)
class Allowance:
    """One policy's state after a request: what the RateLimit fields say."""

    policy: str
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    window: int


class LimitRefused(Refused):
    """A request over a rate limit (429) or a quota (403, or 429 where waiting fixes it)."""

    def __init__(self, status: int, name: str, value: int, used: int, message: str, retry_after: int | None,
                 allowance: Allowance | None = None) -> None:
        super().__init__(message)
        self.status, self.name, self.value, self.used = status, name, value, used
        self.retry_after, self.allowance = retry_after, allowance

    def body(self) -> dict[str, Any]:
        body = {"detail": self.message, "limit": self.name, "value": self.value, "used": self.used}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    def headers(self) -> dict[str, str]:
        headers = rate_headers([self.allowance] if self.allowance else [])
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def rate_headers(allowances: list[Allowance]) -> dict[str, str]:
    """The RateLimit fields for these policies (the first one in the older drafts' three fields)."""
    if not allowances:
        return {}
    first = allowances[0]
    return {"RateLimit-Policy": ", ".join(f'"{a.policy}";q={a.limit};w={a.window}' for a in allowances),
            "RateLimit": ", ".join(f'"{a.policy}";r={a.remaining};t={a.reset}' for a in allowances),
            "RateLimit-Limit": str(first.limit), "RateLimit-Remaining": str(first.remaining),
            "RateLimit-Reset": str(first.reset)}


def roles_of(user: Any) -> set[str]:
    """The user's role names, lower case: FAB users have ``roles`` (objects with ``name``), simple auth ``role``."""
    roles = getattr(user, "roles", None)
    if roles:
        return {str(getattr(r, "name", r)).lower() for r in roles}
    role = getattr(user, "role", None)
    return {str(role).lower()} if role else set()


def subject_of(user: Any, settings: Settings) -> str | None:
    """The counters' key for ``user``; None for a user no limit applies to."""
    if roles_of(user) & {r.lower() for r in settings.limits_exempt_roles}:
        return None
    name = str(user.get_name())
    # The column holds 256 characters: a longer name (an auth manager's, not a request's) is keyed by its hash.
    return f"user:{name}" if len(name) <= 240 else f"user-sha256:{hashlib.sha256(name.encode()).hexdigest()}"


def _catalog_engine(settings: Settings) -> Engine:
    return catalog_for_connection(settings.catalog_conn_id, CATALOG_WAIT_SECONDS).engine


def _in_flight(user_name: str) -> int:
    from vodflow.web.waiting import runs_in_flight

    return runs_in_flight(user_name)


class Limiter:
    """The limits of one settings snapshot against one catalog; ``clock`` and ``in_flight`` are the real ones
    unless a caller (a test of the window's edge) hands others."""

    def __init__(self, settings: Settings | None = None, engine: Engine | None = None,
                 in_flight: Callable[[str], int] = _in_flight, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or load_settings()
        self._engine = engine
        self.in_flight, self.clock = in_flight, clock

    @property
    def engine(self) -> Engine:
        """The catalog's, on first use: a request no limit applies to (an Admin's) never opens it."""
        if self._engine is None:
            self._engine = _catalog_engine(self.settings)
        return self._engine

    def admit_upload(self, user: Any, size: int) -> dict[str, str]:
        """Count an upload grant of ``size`` bytes, or raise LimitRefused; the RateLimit fields to answer with."""
        return self._admit(user, [(UPLOADS, MINUTE, 1), (BYTES, DAY, max(int(size), 1))])

    def admit_trigger(self, user: Any) -> dict[str, str]:
        """Count a trigger, or raise LimitRefused; the RateLimit fields to answer with."""
        return self._admit(user, [(TRIGGERS, MINUTE, 1)])

    def _admit(self, user: Any, wanted: list[tuple[str, int, int]]) -> dict[str, str]:
        subject = subject_of(user, self.settings)
        if subject is None:
            return {}
        self._check_in_flight(user)
        now = self.clock()
        takes = [Take(subject, bucket, int(now // window) * window, amount, limit)
                 for bucket, window, amount in wanted if (limit := getattr(self.settings, SETTING_OF[bucket])) > 0]
        if not takes:
            return {}
        outcome = take_all(self.engine, takes)
        if outcome.refused is None:
            return rate_headers([self._allowance(t, count, now) for t, count in zip(takes, outcome.counts,
                                                                                     strict=True)])
        take = outcome.refused
        allowance = self._allowance(take, outcome.used, now)
        name = SETTING_OF[take.bucket]
        self._refused(name, user)
        if take.bucket == BYTES:
            raise LimitRefused(403, name, take.limit, outcome.used,
                               f"{name}: {take.limit} bytes may be granted for upload per UTC day; "
                               f"{outcome.used} are already and this upload is {take.amount}", None)
        raise LimitRefused(429, name, take.limit, outcome.used,
                           f"{name}: at most {take.limit} a minute; try again in {allowance.reset} s",
                           allowance.reset, allowance)

    def _check_in_flight(self, user: Any) -> None:
        quota = self.settings.quota_videos_in_flight
        if quota <= 0:
            return
        running = self.in_flight(user.get_name())
        if running >= quota:
            self._refused(IN_FLIGHT, user)
            raise LimitRefused(429, IN_FLIGHT, quota, running,
                               f"{IN_FLIGHT}: {running} of your videos are queued or being transcoded, the most "
                               f"allowed is {quota}; start more when some are done", IN_FLIGHT_RETRY_SECONDS)

    def _allowance(self, take: Take, used: int, now: float) -> Allowance:
        window = MINUTE if take.bucket != BYTES else DAY
        reset = max(1, math.ceil(take.window_start + window - now))
        return Allowance(take.bucket, take.limit, max(take.limit - used, 0), reset, window)

    def _refused(self, name: str, user: Any) -> None:
        log.warning("Refused %r: %s", user.get_name(), name)
        try:
            count_refusal(self.engine, name)
        except Exception:  # a refusal answered matters more than its count
            log.exception("Could not count a refusal (%s)", name)
