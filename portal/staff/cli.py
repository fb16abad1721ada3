"""``portal staff add EMAIL [--role sales|admin] [--password-stdin]``."""
import sys

import click
from flask.cli import with_appcontext

from portal.audit.models import record
from portal.extensions import db
from portal.staff.accounts import StaffError, add_staff
from portal.staff.models import ROLES


@click.group("staff")
def staff_group():
    """Manage staff users of the console."""


@staff_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="sales", show_default=True)
@click.option("--password-stdin", is_flag=True,
              help="Read the password from one line of standard input instead of a prompt.")
@with_appcontext
def add_command(email, role, password_stdin):
    """Add a staff user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = add_staff(email, password, role)
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    record("cli", "staff.add", user.email, role=role)
    db.session.commit()
    click.echo(f"added {role} {user.email}")
