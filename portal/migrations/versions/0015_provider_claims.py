"""provider calls that settling a payment claims (a card to keep, money to return),
made once its transaction committed

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('provider_claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('payment_ref', sa.String(length=128), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('customer_ref', sa.String(length=128), nullable=True),
    sa.Column('card_ref', sa.String(length=128), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status in ('requested', 'done', 'refused')", name=op.f('ck_provider_claim_status')),
    sa.ForeignKeyConstraint(['order_id'], ['renewal_order.id'], name=op.f('fk_provider_claim_order_id_renewal_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_claim')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_provider_claim_idempotency_key'))
    )
    with op.batch_alter_table('provider_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_claim_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_provider_claim_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('provider_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_claim_status'))
        batch_op.drop_index(batch_op.f('ix_provider_claim_order_id'))
    op.drop_table('provider_claim')
