"""The ``portal`` console script: the application's Flask CLI."""
import sys

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from portal import create_app
from portal.demo.up import up_command
from portal.errors import ConfigError
from portal.extensions import is_transient_fault


def _create_app():
    return create_app()


cli = FlaskGroup(create_app=_create_app, add_version_option=False, load_dotenv=False,
                 help="Renewal Portal command line.")
cli.add_command(up_command)


def main(args=None):
    """Run the CLI; any usage or input error is one line on stderr and a non-zero exit."""
    try:
        result = cli.main(args=args, prog_name="portal", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        sys.exit(1)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except (OperationalError, ProgrammingError) as error:
        click.echo(f"Error: {database_error(error)}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


#: What a database says when the schema is missing or behind the code.
SCHEMA_MISSING = ("no such table", "no such column", "does not exist")


def database_error(error):
    """One line naming what went wrong with the database; only a missing table or column
    is the schema's fault and sends the operator to ``portal db upgrade``."""
    reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
    if any(words in reason.lower() for words in SCHEMA_MISSING):
        return f"database not ready ({reason}); run 'portal db upgrade'"
    if is_transient_fault(error.orig):
        return f"the database cannot be written now ({reason})"
    return f"database error ({reason})"


if __name__ == "__main__":
    main()
