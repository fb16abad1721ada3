"""payment attempts as records (one row per try, with its provider, provider id, amount,
state and idempotency key) instead of one provider id on the order; CHECK constraints on
order and refund statuses

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ORDER_STATUSES = ('pending', 'awaiting_payment', 'failed', 'paid', 'expired', 'cancelled',
                  'refunded')
REFUND_STATUSES = ('refunded', 'staff_task', 'done')
ATTEMPT_STATES = ('starting', 'open', 'unknown', 'succeeded', 'failed', 'cancelled')


def _in(column, values):
    return f"{column} in ({', '.join(repr(value) for value in values)})"


def upgrade():
    op.create_table('payment_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('off_session', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint(_in('state', ATTEMPT_STATES), name=op.f('ck_payment_attempt_state')),
    sa.ForeignKeyConstraint(['order_id'], ['renewal_order.id'], name=op.f('fk_payment_attempt_order_id_renewal_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_attempt')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payment_attempt_idempotency_key')),
    sa.UniqueConstraint('provider', 'provider_ref', name=op.f('uq_payment_attempt_provider_provider_ref'))
    )
    with op.batch_alter_table('payment_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_attempt_order_id'), ['order_id'], unique=False)

    # Each order's one provider payment becomes its first attempt. An automatic-renewal
    # charge keeps the key it was charged with; a pending order's payment stays open (the
    # reconciliation reads it), a closed order's is no longer followed.
    op.execute("""
        INSERT INTO payment_attempt (order_id, provider, provider_ref, idempotency_key,
                                     off_session, amount, currency, state, created_at,
                                     updated_at)
        SELECT o.id, 'stripe', o.provider_payment_id,
               COALESCE(a.idempotency_key, 'renewal-order-' || o.reference || '-attempt-1'),
               a.id IS NOT NULL, o.amount_due, o.pay_currency,
               CASE o.status WHEN 'paid' THEN 'succeeded' WHEN 'refunded' THEN 'succeeded'
                             WHEN 'failed' THEN 'failed' WHEN 'pending' THEN 'open'
                             ELSE 'cancelled' END,
               o.placed_at, COALESCE(o.paid_at, o.placed_at)
        FROM renewal_order o
        LEFT JOIN auto_renew_attempt a
               ON a.order_id = o.id AND a.provider_ref = o.provider_payment_id
        WHERE o.provider_payment_id IS NOT NULL
    """)
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_renewal_order_provider_payment_id'), type_='unique')
        batch_op.drop_column('provider_payment_id')
        batch_op.create_check_constraint(op.f('ck_renewal_order_status'),
                                         _in('status', ORDER_STATUSES))
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_refund_status'), _in('status', REFUND_STATUSES))


def downgrade():
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_refund_status'), type_='check')
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_renewal_order_status'), type_='check')
        batch_op.add_column(sa.Column('provider_payment_id', sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_renewal_order_provider_payment_id'),
                                          ['provider_payment_id'])
    # The order keeps the provider id of its latest attempt, as it did before.
    op.execute("""
        UPDATE renewal_order SET provider_payment_id = (
            SELECT p.provider_ref FROM payment_attempt p
            WHERE p.order_id = renewal_order.id AND p.provider_ref IS NOT NULL
            ORDER BY p.id DESC LIMIT 1)
    """)
    with op.batch_alter_table('payment_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_attempt_order_id'))
    op.drop_table('payment_attempt')
