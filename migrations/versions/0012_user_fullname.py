"""a user's full name and comment (ISPmanager's `fullname` and `comment`, set by billing systems)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fullname", sa.String(length=128), server_default="", nullable=False))
        batch_op.add_column(sa.Column("comment", sa.String(length=1024), server_default="", nullable=False))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("comment")
        batch_op.drop_column("fullname")
