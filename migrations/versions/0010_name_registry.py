"""one name registry across kinds: reversed names on the index, web domain aliases, administrators' overrides

The registry (app/services/names.py) finds a name's parents and children in every kind: each index row of a
zone, web domain or mail domain keeps its labels reversed ("com.example.shop"), indexed, so the names under
one are one range of the index. Web domain aliases get rows of their own (they were known only to the
nodes); the aliases of web domains indexed before this revision are indexed from their nodes when next
changed or reconciled. name_overrides records each name an administrator let an owner hold against the rules.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("webdomain_index", "domain_index", "maildomain_index")
# Byte order on PostgreSQL, whose language collations order "." and "/" by other rules.
REVERSED_NAME = sa.String(length=253).with_variant(sa.String(length=253, collation="C"), "postgresql")


def reversed_name(name: str) -> str:
    return ".".join(reversed(name.split(".")))


def upgrade():
    bind = op.get_bind()
    for table in TABLES:
        op.add_column(table, sa.Column("reversed_name", REVERSED_NAME, nullable=True))
        rows = bind.execute(sa.text(f"SELECT id, name FROM {table}")).all()
        if rows:
            bind.execute(sa.text(f"UPDATE {table} SET reversed_name = :reversed WHERE id = :id"),
                         [{"id": row.id, "reversed": reversed_name(row.name)} for row in rows])
        op.create_index(op.f(f"ix_{table}_reversed_name"), table, ["reversed_name"], unique=False)
    op.create_table(
        "webdomain_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webdomain_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("reversed_name", REVERSED_NAME, nullable=True),
        sa.ForeignKeyConstraint(["webdomain_id"], ["webdomain_index.id"],
                                name=op.f("fk_webdomain_aliases_webdomain_id_webdomain_index"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webdomain_aliases")),
        sa.UniqueConstraint("name", name=op.f("uq_webdomain_aliases_name")),
    )
    op.create_index(op.f("ix_webdomain_aliases_webdomain_id"), "webdomain_aliases", ["webdomain_id"], unique=False)
    op.create_index(op.f("ix_webdomain_aliases_reversed_name"), "webdomain_aliases", ["reversed_name"],
                    unique=False)
    op.create_table(
        "name_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_name_overrides_owner_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_name_overrides")),
    )
    op.create_index(op.f("ix_name_overrides_name"), "name_overrides", ["name"], unique=False)
    op.create_index(op.f("ix_name_overrides_owner_id"), "name_overrides", ["owner_id"], unique=False)


def downgrade():
    op.drop_table("name_overrides")
    op.drop_table("webdomain_aliases")
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_reversed_name"), table_name=table)
        # The copy SQLite needs to drop a column keeps the AUTOINCREMENT of 0006.
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch_op:
            batch_op.drop_column("reversed_name")
