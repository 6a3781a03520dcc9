"""node setup over SSH (cluster membership): setup progress on nodes

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("setup_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("setup_step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("setup_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("setup_operation_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("setup_operation_id")
        batch.drop_column("setup_error")
        batch.drop_column("setup_step")
        batch.drop_column("setup_pending")
