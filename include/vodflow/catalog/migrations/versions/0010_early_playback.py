"""Early playback (issue 25): a video is watchable while its first version is still encoded. ``videos`` says which
building version is playable and since when; ``early_segments`` lists the segments uploaded so far per track of a
version's early tree (what its EVENT playlists are rendered from), ``early_tracks`` each track's state (how many
segments its playlist lists, its last segment once known, whether it has ended).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("playable_version", sa.Integer))
        batch.add_column(sa.Column("playable_at", sa.DateTime(timezone=True)))
    op.create_table(
        "early_tracks",
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("track", sa.String(32), primary_key=True),
        sa.Column("last_seq", sa.Integer),
        sa.Column("listed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ended", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "early_segments",
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("track", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("uri", sa.String(255), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("early_segments")
    op.drop_table("early_tracks")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("playable_at")
        batch.drop_column("playable_version")
