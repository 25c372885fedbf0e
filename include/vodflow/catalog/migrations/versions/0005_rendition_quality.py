"""Rendition quality (per-title ladders): each rendition's measured VMAF, mean and 5th percentile (sampled:
docs/speed.md#long-videos-and-per-title-ladders). Empty for renditions nobody scored.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.add_column(sa.Column("vmaf", sa.Float))
        batch.add_column(sa.Column("vmaf_p5", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.drop_column("vmaf_p5")
        batch.drop_column("vmaf")
