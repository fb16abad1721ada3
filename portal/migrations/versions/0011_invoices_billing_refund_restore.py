"""orders remember the level and term they replace; invoices, credit notes and billing details;
why automatic renewal was turned off; lapsed reminders

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
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('po_number', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tax_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('billing_address', sa.String(length=500), nullable=True))
    with op.batch_alter_table('auto_renewal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('off_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('off_comment', sa.String(length=500), nullable=True))
    with op.batch_alter_table('notice_record', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notice_record_milestone'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notice_record_milestone'),
                                         'milestone in (60, 30, 15, -1, -30)')
    op.create_table('document_counter',
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('party', name=op.f('pk_document_counter'))
    )
    op.create_table('billing_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number', sa.String(length=80), nullable=False),
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_document.id'], name=op.f('fk_billing_document_invoice_id_billing_document')),
    sa.ForeignKeyConstraint(['order_id'], ['renewal_order.id'], name=op.f('fk_billing_document_order_id_renewal_order')),
    sa.ForeignKeyConstraint(['refund_id'], ['refund.id'], name=op.f('fk_billing_document_refund_id_refund')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_document')),
    sa.UniqueConstraint('number', name=op.f('uq_billing_document_number')),
    sa.UniqueConstraint('order_id', 'kind', name=op.f('uq_billing_document_order_id_kind')),
    sa.UniqueConstraint('party', 'sequence', name=op.f('uq_billing_document_party_sequence')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_billing_document_refund_id'))
    )
    with op.batch_alter_table('billing_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_document_order_id'), ['order_id'], unique=False)


def downgrade():
    with op.batch_alter_table('billing_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_document_order_id'))
    op.drop_table('billing_document')
    op.drop_table('document_counter')
    op.execute("DELETE FROM notice_record WHERE milestone < 0")
    with op.batch_alter_table('notice_record', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notice_record_milestone'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notice_record_milestone'),
                                         'milestone in (60, 30, 15)')
    with op.batch_alter_table('auto_renewal', schema=None) as batch_op:
        batch_op.drop_column('off_comment')
        batch_op.drop_column('off_reason')
    with op.batch_alter_table('renewal_order', schema=None) as batch_op:
        batch_op.drop_column('billing_address')
        batch_op.drop_column('tax_id')
        batch_op.drop_column('po_number')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('previous_term_months')
        batch_op.drop_column('previous_service_level')
