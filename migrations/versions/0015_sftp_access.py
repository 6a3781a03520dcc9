"""hosting accounts' SFTP access: the password's crypt(3) hash the nodes check, and public keys

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("os_password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("ssh_keys", sa.JSON(), server_default="[]", nullable=False))


def downgrade():
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.drop_column("ssh_keys")
        batch_op.drop_column("os_password_hash")
