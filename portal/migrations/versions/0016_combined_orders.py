"""combined orders: an order may be paid by the payment of another order (several
contracts, one payment)

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('combined_into_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_renewal_order_combined_into_id'),
                              ['combined_into_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_renewal_order_combined_into_id_renewal_order'),
                                    'renewal_order', ['combined_into_id'], ['id'])


def downgrade():
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_renewal_order_combined_into_id_renewal_order'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_renewal_order_combined_into_id'))
        batch_op.drop_column('combined_into_id')
