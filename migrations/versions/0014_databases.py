"""the index of customers' databases and database users; the plans' `db_users` limit is named `dbusers`

Revision ID: 0014
Revises: 0013
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = (("database_index", 64), ("dbuser_index", 80))


def upgrade():
    for table, length in TABLES:
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=length), nullable=False),
            sa.Column("owner_id", sa.Integer(), nullable=False),
            sa.Column("node_id", sa.Integer(), nullable=False),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f(f"fk_{table}_node_id_nodes")),
            sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f(f"fk_{table}_owner_id_users"),
                                    ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("name", name=op.f(f"uq_{table}_name")),
            sqlite_autoincrement=True,
        )
        claims = sa.text("claimed_at IS NOT NULL")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_node_id"), ["node_id"], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_owner_id"), ["owner_id"], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_claimed_at"), ["claimed_at"], unique=False,
                                  sqlite_where=claims, postgresql_where=claims)
    _rename_limit("db_users", "dbusers")


def downgrade():
    _rename_limit("dbusers", "db_users")
    for table, _ in reversed(TABLES):
        op.drop_table(table)


def _rename_limit(old: str, new: str) -> None:
    """A limit key renamed in every plan's and account's limits (JSON objects)."""
    bind = op.get_bind()
    value_sql = "CAST(:limits AS JSON)" if bind.dialect.name == "postgresql" else ":limits"
    for table, key in (("plans", "id"), ("user_accounts", "user_id")):
        rows = bind.execute(sa.text(f"SELECT {key}, limits FROM {table}")).all()
        for row_id, limits in rows:
            value = json.loads(limits) if isinstance(limits, str) else limits
            if isinstance(value, dict) and old in value:
                value[new] = value.pop(old)
                bind.execute(sa.text(f"UPDATE {table} SET limits = {value_sql} WHERE {key} = :id"),
                             {"limits": json.dumps(value), "id": row_id})
