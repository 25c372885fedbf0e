"""Upload watcher and reprocessing (release 2): the `uploads` claims, `videos.source_uploaded_at`, their indexes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("source_uploaded_at", sa.DateTime(timezone=True)))
    op.create_table(
        "uploads",
        sa.Column("bucket", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("etag", sa.String(128), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("video_id", sa.String(64), nullable=False),
        sa.Column("dag_run_id", sa.String(250), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_uploads_last_modified", "uploads", ["last_modified"])
    op.create_index("ix_videos_source_uploaded_at", "videos", ["source_uploaded_at"])
    op.create_index("ix_videos_source", "videos", ["source_uri", "source_etag"])


def downgrade() -> None:
    op.drop_index("ix_videos_source", table_name="videos")
    op.drop_index("ix_videos_source_uploaded_at", table_name="videos")
    op.drop_index("ix_uploads_last_modified", table_name="uploads")
    op.drop_table("uploads")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("source_uploaded_at")
