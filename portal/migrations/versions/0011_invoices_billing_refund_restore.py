"""orders remember the level and term they replace; invoices, credit notes and billing details

Revision ID: 0011
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_service_level', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_term_months', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.drop_column('previous_term_months')
        batch_op.drop_column('previous_service_level')
