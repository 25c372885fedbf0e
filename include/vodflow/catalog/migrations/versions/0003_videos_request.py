"""Kept request (release 3): `videos.request`, the latest run's validated request (JSON) that a retry or
reprocess run starts from.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("request", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("request")
