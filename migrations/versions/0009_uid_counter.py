"""a deleted user's UID is not given again until the range has been given out: the last UID given is kept

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    # The highest UID an account holds now is the last one given as far as the master can tell.
    highest = op.get_bind().execute(sa.text("SELECT MAX(uid) FROM user_accounts")).scalar()
    if highest is not None:
        op.bulk_insert(counters, [{"name": "uid", "value": highest}])


def downgrade():
    op.drop_table("counters")
