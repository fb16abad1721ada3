"""Small helpers shared by the command-line modules."""
from datetime import date

import click
from sqlalchemy import select

from portal.contracts.models import Contract
from portal.extensions import db



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


def find_contract(number):
    contract = db.session.scalar(select(Contract).where(Contract.number == number))
    if contract is None:
        raise click.ClickException(f"unknown contract number {number!r}")
    return contract
