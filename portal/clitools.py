"""Small helpers shared by the command-line modules."""
from datetime import date

import click



class IsoDate(click.ParamType):
    """A ``YYYY-MM-DD`` date option; anything else is a one-line usage error."""

    name = "date"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


ISO_DATE = IsoDate()
