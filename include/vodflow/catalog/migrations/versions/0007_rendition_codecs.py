"""Renditions in several codecs (issue 24): each rendition's video codec (``h264``, ``av1``, ``hevc``: the family
a request names; ``codecs`` stays the exact RFC 6381 string) and its dynamic range (HLS ``VIDEO-RANGE``: ``SDR``,
``PQ``, ``HLG``). Every rendition from before was H.264 in SDR: the defaults say so.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.add_column(sa.Column("codec", sa.String(16), nullable=False, server_default="h264"))
        batch.add_column(sa.Column("dynamic_range", sa.String(8), nullable=False, server_default="SDR"))


def downgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.drop_column("dynamic_range")
        batch.drop_column("codec")
