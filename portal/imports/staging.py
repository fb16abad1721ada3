"""Contract imports on PostgreSQL: a batch of parsed contracts goes into temporary
staging tables through COPY (one round trip per table), then a few set-based statements
join the staging tables to the real ones and write only what differs: UPDATE ... FROM
where a value changed, INSERT ... SELECT where a row is missing, DELETE ... USING for the
lines a contract no longer has. Every constraint and index of the real tables stays in
force, and everything happens in the import's one transaction.

The rows written are exactly those of the set-based path for other databases
(portal/imports/contracts.py): the same values, new rows in the same order, a new
partner or product named after its code, ``updated_at`` set only on a contract that
changed.
"""

import psycopg
from sqlalchemy import Column, Integer, MetaData, String, Table, delete
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.timeutil import utc_now

#: The numbers of the contracts written so far by one import, with their place in the
#: file: a temporary table, so that memory does not grow with the book.
SEEN_NUMBERS = Table("import_seen_number", MetaData(),
                     Column("number", String(64), primary_key=True),
                     Column("position", Integer, nullable=False),
                     prefixes=["TEMPORARY"])

#: The staging tables: the columns of a batch as the file gives them, with ``position``
#: (the place in the batch or the file) so that new rows get their ids in file order.
STAGING_TABLES = {
    "import_stage_account": ("position integer", "name text", "country text",
                             "region text"),
    "import_stage_contact": ("position integer", "account_name text",
                             "account_country text", "email text", "name text",
                             "language text", '"primary" boolean', "renewals boolean"),
    "import_stage_contract": ("position integer", "number text", "account_name text",
                              "account_country text", "partner text", "channel text",
                              "price_list_id integer", "service_level text",
                              "term_months integer", "start_date date", "end_date date",
                              "status text"),
    "import_stage_line": ("position integer", "number text", "product_code text",
                          "quantity integer"),
}

#: A staged contract joined to its account and (when it has one) its partner.
CONTRACT_SOURCE = """import_stage_contract AS s
    JOIN account AS a ON a.name = s.account_name AND a.country = s.account_country
    LEFT JOIN partner AS p ON p.code = s.partner"""
CONTRACT_VALUES = """a.id, p.id, s.channel, s.price_list_id, s.service_level,
    s.term_months, s.start_date, s.end_date, s.status"""
CONTRACT_FIELDS = ("account_id", "partner_id", "channel", "price_list_id", "service_level",
                   "term_months", "start_date", "end_date", "status")
CONTRACT_COLUMNS = ", ".join(CONTRACT_FIELDS)
STAGED_CONTACT = """import_stage_contact AS s
    JOIN account AS a ON a.name = s.account_name AND a.country = s.account_country"""
STAGED_LINE = "import_stage_line AS n JOIN contract AS c ON c.number = n.number"

#: One batch, in the order of the set-based path: partners, accounts, contacts,
#: products, contracts, lines.
STATEMENTS = (
    # Partners and products new to the portal, named after their code, in code order.
    """INSERT INTO partner (code, name)
    SELECT code, code FROM (SELECT DISTINCT partner AS code FROM import_stage_contract
                            WHERE partner IS NOT NULL) AS new
    WHERE NOT EXISTS (SELECT 1 FROM partner AS p WHERE p.code = new.code)
    ORDER BY code COLLATE "C" """,
    """UPDATE account AS a SET region = s.region FROM import_stage_account AS s
    WHERE a.name = s.name AND a.country = s.country AND a.region IS DISTINCT FROM s.region""",
    """INSERT INTO account (name, country, region)
    SELECT s.name, s.country, s.region FROM import_stage_account AS s
    WHERE NOT EXISTS (SELECT 1 FROM account AS a
                      WHERE a.name = s.name AND a.country = s.country)
    ORDER BY s.position""",
    f"""UPDATE contact AS c
    SET name = s.name, language = s.language, "primary" = s."primary", renewals = s.renewals
    FROM {STAGED_CONTACT}
    WHERE c.account_id = a.id AND c.email = s.email
      AND (c.name, c.language, c."primary", c.renewals)
          IS DISTINCT FROM (s.name, s.language, s."primary", s.renewals)""",
    f"""INSERT INTO contact (account_id, email, name, language, "primary", renewals)
    SELECT a.id, s.email, s.name, s.language, s."primary", s.renewals FROM {STAGED_CONTACT}
    WHERE NOT EXISTS (SELECT 1 FROM contact AS c
                      WHERE c.account_id = a.id AND c.email = s.email)
    ORDER BY s.position""",
    """INSERT INTO product (code, name)
    SELECT code, code FROM (SELECT DISTINCT product_code AS code FROM import_stage_line) AS new
    WHERE NOT EXISTS (SELECT 1 FROM product AS p WHERE p.code = new.code)
    ORDER BY code COLLATE "C" """,
    f"""UPDATE contract AS c
    SET ({CONTRACT_COLUMNS}, updated_at) = ({CONTRACT_VALUES}, %(now)s)
    FROM {CONTRACT_SOURCE}
    WHERE c.number = s.number
      AND ({", ".join(f"c.{field}" for field in CONTRACT_FIELDS)})
          IS DISTINCT FROM ({CONTRACT_VALUES})""",
    f"""INSERT INTO contract (number, {CONTRACT_COLUMNS}, updated_at)
    SELECT s.number, {CONTRACT_VALUES}, %(now)s FROM {CONTRACT_SOURCE}
    WHERE NOT EXISTS (SELECT 1 FROM contract AS c WHERE c.number = s.number)
    ORDER BY s.position""",
    # A contract's lines become exactly the file's: remove, add, change quantities.
    """DELETE FROM contract_line AS l USING contract AS c, import_stage_contract AS s
    WHERE l.contract_id = c.id AND c.number = s.number
      AND NOT EXISTS (SELECT 1 FROM import_stage_line AS n
                      WHERE n.number = s.number AND n.product_code = l.product_code)""",
    f"""INSERT INTO contract_line (contract_id, product_code, quantity)
    SELECT c.id, n.product_code, n.quantity FROM {STAGED_LINE}
    WHERE NOT EXISTS (SELECT 1 FROM contract_line AS l
                      WHERE l.contract_id = c.id AND l.product_code = n.product_code)
    ORDER BY n.position""",
    f"""UPDATE contract_line AS l SET quantity = n.quantity FROM {STAGED_LINE}
    WHERE l.contract_id = c.id AND l.product_code = n.product_code
      AND l.quantity <> n.quantity""",
)

#: COPY's text format: a backslash, tab or line break inside a value is escaped.
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class SeenNumbers:
    """What both ways of writing share: the table of numbers seen, created in the
    import's transaction (a rollback removes it) and dropped when the import is done."""

    def __init__(self):
        connection = db.session.connection()
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_seen_number "
            "(number VARCHAR(64) PRIMARY KEY, position INTEGER NOT NULL)")
        connection.execute(delete(SEEN_NUMBERS))  # left by an import that was not undone

    def drop(self):
        SEEN_NUMBERS.drop(db.session.connection())


class StagedBatches(SeenNumbers):
    """PostgreSQL: each batch through COPY into the staging tables, then ``STATEMENTS``.

    Each statement joins a batch (a thousand rows) to tables of any size by their unique
    keys. Without statistics on the staging tables the planner hashes the whole big
    table for every batch, which makes an import quadratic in the book; hash and merge
    joins are therefore off while the import runs, leaving index lookups per staged row.
    """

    PLANNER = ("enable_hashjoin", "enable_mergejoin")

    def __init__(self):
        super().__init__()
        self.connection = db.session.connection()
        for table, columns in STAGING_TABLES.items():
            self.connection.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({', '.join(columns)}) "
                "ON COMMIT DROP")
        # Which lines a contract keeps: looked up for each of its current lines.
        self.connection.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS import_stage_line_key"
            " ON import_stage_line (number, product_code)")
        self.planner = self.connection.exec_driver_sql(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in self.PLANNER)
        ).one()
        self._plan({name: "off" for name in self.PLANNER})

    def stage(self, contracts):
        self.connection.exec_driver_sql(f"TRUNCATE {', '.join(STAGING_TABLES)}")
        self._copy(contracts)

    def earlier_numbers(self):
        return dict(self.connection.exec_driver_sql(
            "SELECT s.number, n.position FROM import_stage_contract AS s"
            " JOIN import_seen_number AS n ON n.number = s.number").all())

    def write(self):
        now = {"now": utc_now()}
        for statement in STATEMENTS:
            self.connection.exec_driver_sql(statement, now)
        self.connection.exec_driver_sql(
            "INSERT INTO import_seen_number (number, position)"
            " SELECT number, position FROM import_stage_contract")

    def drop(self):
        super().drop()
        self.connection.exec_driver_sql(f"DROP TABLE {', '.join(STAGING_TABLES)}")
        self._plan(dict(zip(self.PLANNER, self.planner)))

    def _plan(self, settings):
        """Planner settings for the rest of this transaction only (``SET LOCAL``)."""
        self.connection.exec_driver_sql(
            "SELECT " + ", ".join(f"set_config('{name}', %({name})s, true)"
                                  for name in settings), settings)

    def _copy(self, contracts):
        accounts, contacts = {}, {}
        for contract in contracts:
            account = contract["account"]
            key = (account["name"], account["country"])
            accounts[key] = account["region"]  # the file's last word on an account wins
            for contact in contract["contacts"]:
                contacts[(*key, contact["email"])] = contact
        self._copy_rows("import_stage_account", (
            (position, name, country, region)
            for position, ((name, country), region) in enumerate(accounts.items())))
        self._copy_rows("import_stage_contact", (
            (position, name, country, email, contact["name"], contact["language"],
             contact["primary"], contact["renewals"])
            for position, ((name, country, email), contact) in enumerate(contacts.items())))
        self._copy_rows("import_stage_contract", (
            (c["position"], c["number"], c["account"]["name"], c["account"]["country"],
             c["partner"], c["channel"], c["price_list_id"], c["service_level"],
             c["term_months"], c["start_date"], c["end_date"], c["status"])
            for c in contracts))
        self._copy_rows("import_stage_line", (
            (position, number, code, quantity) for position, (number, code, quantity)
            in enumerate((c["number"], code, quantity)
                         for c in contracts for code, quantity in c["lines"].items())))

    def _copy_rows(self, table, rows):
        text = "".join("\t".join(map(_copy_value, row)) + "\n" for row in rows)
        columns = ", ".join(column.split()[0] for column in STAGING_TABLES[table])
        statement = f"COPY {table} ({columns}) FROM STDIN"
        cursor = self.connection.connection.cursor()
        try:
            with cursor.copy(statement) as copy:
                copy.write(text)
        except psycopg.Error as error:
            raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
        finally:
            cursor.close()


def _copy_value(value):
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES)
    return str(value)  # a whole number, or a date as YYYY-MM-DD
