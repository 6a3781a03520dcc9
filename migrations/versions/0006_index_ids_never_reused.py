"""index ids are never reused: SQLite's AUTOINCREMENT on the four user-data index tables

Without it SQLite gives a new row the id of the highest row deleted before it, so an id a client holds
(or a write in flight) could come to name another record: a delete whose row a reconciliation had removed
then removed the next create's claim, which had taken that id. PostgreSQL's sequences never reuse ids.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("webdomain_index", "domain_index", "maildomain_index", "mailbox_index")


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # The copy keeps every row and id; the partial index of claims is made again as 0005 made it.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_claimed_at"))
        claims = sa.text("claimed_at IS NOT NULL")
        op.create_index(op.f(f"ix_{table}_claimed_at"), table, ["claimed_at"], unique=False,
                        sqlite_where=claims, postgresql_where=claims)


def downgrade():
    # An AUTOINCREMENT table serves the older schema as it is: nothing to undo.
    pass
