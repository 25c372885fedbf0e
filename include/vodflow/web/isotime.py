"""Timestamps in the API's JSON: ISO 8601 in UTC with a ``Z``, the same in every route and event."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def iso(value: Any) -> Any:
    """A datetime as ``2026-12-07T14:19:09.123456Z``; anything else (None, a string already) as it is."""
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
