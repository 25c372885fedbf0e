"""The video catalog: Postgres (SQLite only in the embedded demo) through an Airflow connection.

``schema`` (tables, statuses), ``migrations`` (Alembic), ``connection`` (engines, reconnecting), ``records``
(values and refusals), ``store`` (the pipeline's writes), ``early`` (early playback's), ``queries`` (reads).
``Catalog`` is all of them.
"""

from __future__ import annotations

from functools import lru_cache

from vodflow.catalog.connection import (
    RECONNECT_SECONDS,
    engine_url_for_connection,
    is_disconnect,
    make_engine,
    reconnecting,
)
from vodflow.catalog.early import EarlyWrites
from vodflow.catalog.queries import CatalogQueries
from vodflow.catalog.records import (
    AlreadyActive,
    AlreadyEncoded,
    BeingDeleted,
    OtherSource,
    RenditionPlan,
    Superseded,
    UploadObject,
    VariantRecord,
)
from vodflow.catalog.schema import *  # noqa: F403 - re-exported: the catalog's vocabulary
from vodflow.catalog.store import PipelineWrites


class Catalog(PipelineWrites, EarlyWrites, CatalogQueries):
    """One catalog database: the pipeline's writes and every read."""


@lru_cache(maxsize=4)
def catalog_for_connection(conn_id: str, reconnect_seconds: float = RECONNECT_SECONDS) -> Catalog:
    """One engine per process and connection; the schema is brought up to date on first use."""
    catalog = Catalog(make_engine(engine_url_for_connection(conn_id)), reconnect_seconds)
    catalog.migrate()
    return catalog


__all__ = ["RECONNECT_SECONDS", "AlreadyActive", "AlreadyEncoded", "BeingDeleted", "Catalog", "OtherSource",
           "RenditionPlan", "Superseded",
           "UploadObject", "VariantRecord", "catalog_for_connection", "engine_url_for_connection", "is_disconnect",
           "make_engine", "reconnecting"]
