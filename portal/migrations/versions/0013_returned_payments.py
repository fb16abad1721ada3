"""payments for cancelled or lapsed orders that staff paid back

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('returned_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('returned_on', sa.Date(), nullable=False),
    sa.Column('returned_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_returned_payment_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_returned_payment')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_returned_payment_payment_id'))
    )


def downgrade():
    op.drop_table('returned_payment')
