"""hosting plans (ISPmanager's presets): a named set of limits and roles; a user's account names its plan

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_accounts_plan_id"), ["plan_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_user_accounts_plan_id_plans"), "plans", ["plan_id"], ["id"],
                                    ondelete="RESTRICT")


def downgrade():
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_user_accounts_plan_id_plans"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_user_accounts_plan_id"))
        batch_op.drop_column("plan_id")
    op.drop_table("plans")
