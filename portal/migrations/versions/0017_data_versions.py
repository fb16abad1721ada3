"""data versions: a token per kind of reference data (exchange rates, product names) that
triggers replace on every write to the kind's table, so that pages may keep what they read
under the token

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# The SQL as it stood when this revision was written (portal/dataversion.py installs the
# same for a schema made by create_all).
TABLES = {'rates': 'exchange_rate', 'products': 'product'}
ACTIONS = ('insert', 'update', 'delete')
SQLITE_TOKEN = "lower(hex(randomblob(16)))"
POSTGRESQL_TOKEN = "md5(random()::text || clock_timestamp()::text)"
POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION bump_data_version() RETURNS trigger AS $$
BEGIN
    UPDATE data_version SET token = {POSTGRESQL_TOKEN} WHERE kind = TG_ARGV[0];
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_table(
        'data_version',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('kind', name=op.f('pk_data_version')),
    )
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
    for kind, table in TABLES.items():
        token = POSTGRESQL_TOKEN if postgresql else SQLITE_TOKEN
        op.execute(f"INSERT INTO data_version (kind, token) VALUES ('{kind}', {token})")
        if postgresql:
            op.execute(f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON "
                       f"{table} FOR EACH ROW EXECUTE FUNCTION bump_data_version('{kind}')")
            op.execute(f"CREATE TRIGGER {table}_truncate_version AFTER TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('{kind}')")
            continue
        for action in ACTIONS:
            op.execute(f"CREATE TRIGGER {table}_{action}_version AFTER {action.upper()} ON "
                       f"{table} BEGIN UPDATE data_version SET token = {SQLITE_TOKEN} "
                       f"WHERE kind = '{kind}'; END")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES.values():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_truncate_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_data_version()")
    else:
        for table in TABLES.values():
            for action in ACTIONS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{action}_version")
    op.drop_table('data_version')
