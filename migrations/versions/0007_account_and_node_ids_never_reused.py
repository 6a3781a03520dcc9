"""account, token and node ids are never reused: SQLite's AUTOINCREMENT on users, api_tokens, nodes

Pages and the API act on these by id (delete a user, remove a node, revoke a token); without it SQLite
gives a new row the id of the highest one deleted before it, and a stale page's action would reach the
newer account or node. PostgreSQL's sequences never reuse ids.

Revision ID: 0007
Revises: 0006
"""
from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("users", "api_tokens", "nodes")


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Foreign keys are off while migrations run (env.py): the tables that refer to these keep their rows.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade():
    # An AUTOINCREMENT table serves the older schema as it is: nothing to undo.
    pass
