"""Alembic environment of the catalog: migrates the connection that ``vodflow.catalog.migrations`` hands over
in ``config.attributes["connection"]``, inside that connection's transaction."""

from alembic import context

from vodflow.catalog import OPTIONAL_INDEXES, metadata
from vodflow.catalog.migrations import VERSION_TABLE


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Autogenerate looks at the catalog's tables only: the database may hold Airflow's and the version tables."""
    if type_ == "index":
        return name not in OPTIONAL_INDEXES  # Postgres-only trigram indexes, made by revision 0009 when it can
    return type_ != "table" or name in metadata.tables


connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("The catalog migrates a live connection: Catalog.migrate() or `vodflow db migrate`.")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=True, include_name=include_name, compare_server_default=True)
with context.begin_transaction():
    context.run_migrations()
