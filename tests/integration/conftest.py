"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from vodflow.catalog import Catalog, make_engine


@pytest.fixture(params=["postgres", "sqlite"])
def catalog(request, pg_database, tmp_path) -> Catalog:
    """A migrated catalog on the machine's Postgres (a database made for the run) and on SQLite (the demo's)."""
    url = pg_database if request.param == "postgres" else f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(make_engine(url))
    catalog.migrate()
    yield catalog
    catalog.engine.dispose()
