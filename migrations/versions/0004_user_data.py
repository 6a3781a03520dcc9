"""user data index (users placement, domains, mail)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('domain_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_domain_index_node_id_nodes')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_domain_index_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_index')),
    sa.UniqueConstraint('name', name=op.f('uq_domain_index_name'))
    )
    with op.batch_alter_table('domain_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domain_index_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_domain_index_owner_id'), ['owner_id'], unique=False)

    op.create_table('mailbox_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_mailbox_index_node_id_nodes')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_mailbox_index_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox_index')),
    sa.UniqueConstraint('address', name=op.f('uq_mailbox_index_address'))
    )
    with op.batch_alter_table('mailbox_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailbox_index_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mailbox_index_owner_id'), ['owner_id'], unique=False)

    op.create_table('maildomain_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_maildomain_index_node_id_nodes')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_maildomain_index_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maildomain_index')),
    sa.UniqueConstraint('name', name=op.f('uq_maildomain_index_name'))
    )
    with op.batch_alter_table('maildomain_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maildomain_index_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maildomain_index_owner_id'), ['owner_id'], unique=False)

    op.create_table('pending_writes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_pending_writes_node_id_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_writes'))
    )
    with op.batch_alter_table('pending_writes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_writes_node_id'), ['node_id'], unique=False)

    op.create_table('placement_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('chosen_by', sa.String(length=8), nullable=False),
    sa.Column('resource', sa.String(length=16), nullable=False),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_placement_decisions_node_id_nodes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_placement_decisions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placement_decisions'))
    )
    with op.batch_alter_table('placement_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_decisions_user_id'), ['user_id'], unique=False)

    op.create_table('user_accounts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.Integer(), nullable=False),
    sa.Column('gid', sa.Integer(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('limits', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_accounts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_accounts')),
    sa.UniqueConstraint('uid', name=op.f('uq_user_accounts_uid'))
    )
    op.create_table('webdomain_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_webdomain_index_node_id_nodes')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_webdomain_index_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webdomain_index')),
    sa.UniqueConstraint('name', name=op.f('uq_webdomain_index_name'))
    )
    with op.batch_alter_table('webdomain_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webdomain_index_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webdomain_index_owner_id'), ['owner_id'], unique=False)

    op.create_table('placements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['decision_id'], ['placement_decisions.id'], name=op.f('fk_placements_decision_id_placement_decisions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_placements_node_id_nodes')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_placements_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placements')),
    sa.UniqueConstraint('user_id', 'role', name='uq_placements_user_role')
    )
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placements_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_placements_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('placements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placements_user_id'))
        batch_op.drop_index(batch_op.f('ix_placements_node_id'))

    op.drop_table('placements')
    with op.batch_alter_table('webdomain_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webdomain_index_owner_id'))
        batch_op.drop_index(batch_op.f('ix_webdomain_index_node_id'))

    op.drop_table('webdomain_index')
    op.drop_table('user_accounts')
    with op.batch_alter_table('placement_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_decisions_user_id'))

    op.drop_table('placement_decisions')
    with op.batch_alter_table('pending_writes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_writes_node_id'))

    op.drop_table('pending_writes')
    with op.batch_alter_table('maildomain_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maildomain_index_owner_id'))
        batch_op.drop_index(batch_op.f('ix_maildomain_index_node_id'))

    op.drop_table('maildomain_index')
    with op.batch_alter_table('mailbox_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailbox_index_owner_id'))
        batch_op.drop_index(batch_op.f('ix_mailbox_index_node_id'))

    op.drop_table('mailbox_index')
    with op.batch_alter_table('domain_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domain_index_owner_id'))
        batch_op.drop_index(batch_op.f('ix_domain_index_node_id'))

    op.drop_table('domain_index')
