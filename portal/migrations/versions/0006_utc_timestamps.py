"""timestamps come from the application's UTC clock, not the database clock

The models now give every creation timestamp a Python default (portal/timeutil.py,
``utc_now``). On PostgreSQL the old ``DEFAULT CURRENT_TIMESTAMP`` of these columns wrote the
*session's* local time into a column without time zone, so it is dropped: a row inserted
by hand must say its UTC time. SQLite's ``CURRENT_TIMESTAMP`` is UTC already, and nothing
in the application relies on it, so its tables are not rebuilt for it.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: (table, column) of every timestamp that had the database clock as its default.
CLOCK_DEFAULTS = (
    ("audit_entry", "at"),
    ("exchange_rate", "recorded_at"),
    ("contract", "updated_at"),
    ("quote", "issued_at"),
    ("renewal_order", "placed_at"),
    ("payment", "recorded_at"),
    ("renewal_link", "issued_at"),
    ("processed_event", "received_at"),
    ("staff_user", "created_at"),
    ("partner_api_key", "created_at"),
    ("outbox_message", "created_at"),
    ("quote_change_request", "created_at"),
    ("notice_record", "created_at"),
    ("auto_renew_attempt", "created_at"),
    ("auto_renewal", "opted_in_at"),
    ("refund", "created_at"),
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in CLOCK_DEFAULTS:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP DEFAULT')


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in CLOCK_DEFAULTS:
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT CURRENT_TIMESTAMP')
