"""operations count how often recovery queued them again (a job lost or abandoned before its first step)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requeues", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("requeues")
