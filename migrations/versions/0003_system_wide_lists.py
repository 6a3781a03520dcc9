"""system-wide lists and distributed requests

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "system_lists",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "list_changes",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("list", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=True),
        sa.Column("row", sa.JSON(), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("base_hash", sa.String(length=64), nullable=True),
        sa.Column("new_version", sa.Integer(), nullable=True),
        sa.Column("new_hash", sa.String(length=64), nullable=True),
        sa.Column("new_rows", sa.JSON(), nullable=True),
        sa.Column("prior_desyncs", sa.JSON(), nullable=True),
        sa.Column("committed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("operation_id"),
    )
    op.create_index("ix_list_changes_list", "list_changes", ["list"])


def downgrade():
    op.drop_index("ix_list_changes_list", table_name="list_changes")
    op.drop_table("list_changes")
    op.drop_table("system_lists")
