"""Initial schema, as release 1 created it: videos, video_versions, renditions, video_events.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("source_etag", sa.String(128)),
        sa.Column("source_size", sa.BigInteger),
        sa.Column("title", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(32)),
        sa.Column("error_message", sa.Text),
        sa.Column("duration", sa.Float),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("fps", sa.Float),
        sa.Column("has_audio", sa.Boolean),
        sa.Column("video_codec", sa.String(32)),
        sa.Column("audio_codec", sa.String(32)),
        sa.Column("ladder_version", sa.Integer),
        sa.Column("current_version", sa.Integer),
        sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("master_uri", sa.Text),
        sa.Column("poster_uri", sa.Text),
        sa.Column("dag_run_id", sa.String(250)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_videos_status", "videos", ["status"])
    op.create_index("ix_videos_created_at", "videos", ["created_at"])
    op.create_table(
        "video_versions",
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("dag_run_id", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ladder_version", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("video_id", "dag_run_id", name="uq_video_versions_run"),
    )
    op.create_table(
        "renditions",
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("video_kbps", sa.Integer),
        sa.Column("audio_kbps", sa.Integer),
        sa.Column("bandwidth", sa.Integer),
        sa.Column("average_bandwidth", sa.Integer),
        sa.Column("codecs", sa.String(64)),
        sa.Column("frame_rate", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("segments", sa.Integer),
        sa.Column("playlist_uri", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "video_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_video_events_video_id", "video_events", ["video_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_video_events_video_id", table_name="video_events")
    op.drop_table("video_events")
    op.drop_table("renditions")
    op.drop_table("video_versions")
    op.drop_index("ix_videos_created_at", table_name="videos")
    op.drop_index("ix_videos_status", table_name="videos")
    op.drop_table("videos")
