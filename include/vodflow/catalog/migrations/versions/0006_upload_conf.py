"""An app's claim keeps its conf: `uploads.conf`, the conf (JSON) the checked trigger accepted for a run it is
starting, so the upload watcher starts that run as the app asked (title, callback, ladder, …) if the trigger
fails. Empty for the watcher's own claims, and once the run exists.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("conf", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("conf")
