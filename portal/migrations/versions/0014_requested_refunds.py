"""a card refund is claimed as ``requested`` before the provider is asked: the refund
status CHECK constraint takes the new value

Revision ID: 0014
Revises: 0013
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

OLD_STATUSES = ('refunded', 'staff_task', 'done')
NEW_STATUSES = ('requested',) + OLD_STATUSES


def _in(column, values):
    return f"{column} in ({', '.join(repr(value) for value in values)})"


def _constrain(statuses):
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_refund_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_refund_status'), _in('status', statuses))


def upgrade():
    _constrain(NEW_STATUSES)


def downgrade():
    # A refund still waiting for the provider's answer cannot be kept under the old
    # statuses; it is refused rather than guessed.
    _constrain(OLD_STATUSES)
