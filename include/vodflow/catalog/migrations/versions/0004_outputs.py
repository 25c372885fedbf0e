"""Outputs (release 4): `version_outputs`, every published output of a version — the HLS tree, MP4/M4A/MP3
downloads, storyboard, CMAF manifests — with its key, bytes, content type, duration and codecs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_outputs",
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("codecs", sa.String(128)),
        sa.Column("filename", sa.String(255)),
    )


def downgrade() -> None:
    op.drop_table("version_outputs")
