"""``portal staff add EMAIL [--role sales|admin] [--password-stdin]`` and
``portal staff set-password EMAIL [--password-stdin]``."""
import sys

import click
from flask.cli import with_appcontext

from portal.audit.models import record
from portal.extensions import db
from portal.staff.accounts import StaffError, add_staff, find_staff, set_password
from portal.staff.models import ROLES


@click.group("staff")
def staff_group():
    """Manage staff users of the console."""


def _password(password_stdin):
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@staff_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="sales", show_default=True)
@click.option("--password-stdin", is_flag=True,
              help="Read the password from one line of standard input instead of a prompt.")
@with_appcontext
def add_command(email, role, password_stdin):
    """Add a staff user."""
    password = _password(password_stdin)
    try:
        user = add_staff(email, password, role)
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    record("cli", "staff.add", user.email, role=role)
    db.session.commit()
    click.echo(f"added {role} {user.email}")


@staff_group.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from one line of standard input instead of a prompt.")
@with_appcontext
def set_password_command(email, password_stdin):
    """Give a staff user a new password; every session of theirs ends."""
    user = find_staff(email)
    if user is None:
        raise click.ClickException(f"no staff user {email}")
    try:
        set_password(user, _password(password_stdin))
    except StaffError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    record("cli", "staff.password", user.email)
    db.session.commit()
    click.echo(f"new password for {user.email}; their sessions have ended")
