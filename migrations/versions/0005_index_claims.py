"""index rows can be claims: a create claims its name before the node is asked

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("webdomain_index", "domain_index", "maildomain_index", "mailbox_index")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
            # Partial: only claims (see models.userdata.Claimable).
            claims = sa.text("claimed_at IS NOT NULL")
            batch_op.create_index(batch_op.f(f"ix_{table}_claimed_at"), ["claimed_at"], unique=False,
                                  sqlite_where=claims, postgresql_where=claims)


def downgrade():
    for table in TABLES:
        # A claim is a create whose node never confirmed it: it is not data the index held.
        op.execute(sa.text(f"DELETE FROM {table} WHERE claimed_at IS NOT NULL"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_claimed_at"))
            batch_op.drop_column("claimed_at")
