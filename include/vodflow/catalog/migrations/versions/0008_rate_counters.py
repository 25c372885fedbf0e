"""Per-user rate limits and quotas (issue 26): `rate_counters`, one row per (subject, bucket, fixed window) bumped by
an atomic upsert, and `limit_refusals`, requests refused by a limit per reason (what the metrics count).

Revision ID: 0008
Revises: 0006 (0007 is on another branch: re-chain to 0007 when both are merged)
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("subject", sa.String(256), primary_key=True),
        sa.Column("bucket", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "limit_refusals",
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_refusals")
    op.drop_table("rate_counters")
