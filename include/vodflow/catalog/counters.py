"""Per-user counters for rate limits and quotas, in the catalog so every api-server process and host agree.

Fixed windows (a minute, a UTC day): one row per (subject, bucket, window start). Taking is one statement,
``INSERT … ON CONFLICT DO UPDATE SET count = count + n WHERE count + n <= limit RETURNING count``: the database
serialises concurrent takes on the row, a take that would pass the limit changes nothing and returns no row, so a
refused request never uses up the allowance. Several takes (an upload's rate and its bytes) run in one transaction:
one refused, none counted. A fixed window lets a burst of up to 2 × the limit straddle a boundary; a sliding window
would need a row per request or two windows per check, which the limits here (a flood guard, not billing) do not.
When a subject's new window opens (its first take returns exactly ``n``), that subject's older windows of the bucket
are deleted through the primary key: pruning costs one indexed delete per subject and window.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vodflow.catalog.connection import dialect_insert
from vodflow.catalog.schema import limit_refusals, rate_counters


@dataclass(frozen=True)
class Take:
    """Add ``amount`` to ``subject``'s ``bucket`` in the window starting at ``window_start`` (Unix seconds), unless
    that would pass ``limit``."""

    subject: str
    bucket: str
    window_start: int
    amount: int
    limit: int


@dataclass(frozen=True)
class Outcome:
    """The count after the takes (``counts``, one per take), or the first take refused and what it found."""

    counts: tuple[int, ...]
    refused: Take | None = None
    used: int = 0


def _take(conn: Connection, take: Take) -> int | None:
    """The new count, or None when ``take`` would pass its limit (nothing changed)."""
    statement = dialect_insert(conn)(rate_counters).values(
        subject=take.subject, bucket=take.bucket, window_start=take.window_start, count=take.amount)
    statement = statement.on_conflict_do_update(
        index_elements=["subject", "bucket", "window_start"],
        set_={"count": rate_counters.c.count + statement.excluded.count},
        where=rate_counters.c.count + statement.excluded.count <= take.limit,
    ).returning(rate_counters.c.count)
    count = conn.execute(statement).scalar()
    if count is not None and count == take.amount:  # this window just opened: drop the subject's older ones
        conn.execute(rate_counters.delete().where(
            rate_counters.c.subject == take.subject, rate_counters.c.bucket == take.bucket,
            rate_counters.c.window_start < take.window_start))
    return None if count is None else int(count)


def _used(conn: Connection, take: Take) -> int:
    return int(conn.execute(sa.select(rate_counters.c.count).where(
        rate_counters.c.subject == take.subject, rate_counters.c.bucket == take.bucket,
        rate_counters.c.window_start == take.window_start)).scalar() or 0)


def take_all(engine: Engine, takes: list[Take]) -> Outcome:
    """Every take or none: the first that would pass its limit rolls the others back."""
    for take in takes:  # more than the whole allowance at once: refused without touching the row
        if take.amount > take.limit:
            with engine.connect() as conn:
                return Outcome((), take, _used(conn, take))
    with engine.connect() as conn:
        transaction = conn.begin()
        counts = []
        for take in takes:
            count = _take(conn, take)
            if count is None:
                transaction.rollback()
                return Outcome(tuple(counts), take, _used(conn, take))
            counts.append(count)
        transaction.commit()
    return Outcome(tuple(counts))


def count_refusal(engine: Engine, reason: str) -> None:
    with engine.begin() as conn:
        statement = dialect_insert(conn)(limit_refusals).values(reason=reason, count=1)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["reason"], set_={"count": limit_refusals.c.count + 1}))


def refusal_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.reason: int(r.count) for r in conn.execute(sa.select(limit_refusals))}
