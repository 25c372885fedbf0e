"""The rate-limit counters (``catalog.counters``) on Postgres and SQLite: the conditional upsert stops at the limit
under concurrent takes from separate connections, a refused take changes nothing (nor the takes before it in the
same call), and a subject's older windows go when its next one opens."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from vodflow.catalog import make_engine, rate_counters
from vodflow.catalog.counters import Take, count_refusal, refusal_counts, take_all

pytestmark = pytest.mark.integration


def rows(catalog, subject: str) -> list[tuple[str, int, int]]:
    with catalog.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(rate_counters.c.bucket, rate_counters.c.window_start, rate_counters.c.count)
            .where(rate_counters.c.subject == subject).order_by(rate_counters.c.bucket, rate_counters.c.window_start))]


def test_concurrent_takes_stop_exactly_at_the_limit(catalog):
    """8 threads, each its own engine (as separate api-server processes), 10 takes each against a limit of 25."""
    engines = [make_engine(catalog.engine.url) for _ in range(8)]
    allowed: list[int] = []
    lock = threading.Lock()

    def hammer(engine) -> None:
        for _ in range(10):
            outcome = take_all(engine, [Take("user:t", "triggers", 600, 1, 25)])
            if outcome.refused is None:
                with lock:
                    allowed.append(outcome.counts[0])
    threads = [threading.Thread(target=hammer, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for engine in engines:
        engine.dispose()
    assert sorted(allowed) == list(range(1, 26)), sorted(allowed)  # each count handed out once, none past 25
    assert rows(catalog, "user:t") == [("triggers", 600, 25)]


def test_a_refused_take_changes_nothing_and_old_windows_are_pruned(catalog):
    both = [Take("user:u", "uploads", 60, 1, 5), Take("user:u", "bytes", 0, 700, 1000)]
    assert take_all(catalog.engine, both).counts == (1, 700)
    refused = take_all(catalog.engine, both)  # the bytes would pass 1000: the uploads take is rolled back too
    assert (refused.refused, refused.used) == (both[1], 700)
    assert rows(catalog, "user:u") == [("bytes", 0, 700), ("uploads", 60, 1)]
    whole = take_all(catalog.engine, [Take("user:u", "bytes", 0, 5000, 1000)])  # more than the allowance at once
    assert (whole.refused is not None, whole.used) == (True, 700)
    assert take_all(catalog.engine, [Take("user:u", "uploads", 120, 1, 5)]).counts == (1,)  # a new minute
    assert rows(catalog, "user:u") == [("bytes", 0, 700), ("uploads", 120, 1)]  # the minute before is gone
    count_refusal(catalog.engine, "quota_bytes_per_day")
    count_refusal(catalog.engine, "quota_bytes_per_day")
    assert refusal_counts(catalog.engine)["quota_bytes_per_day"] >= 2
