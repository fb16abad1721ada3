"""Small helpers shared by the command-line modules."""
from datetime import date

import click
from sqlalchemy import select

from portal.contracts.models import Contract
from portal.extensions import db

#: The days a command's ``--date`` may name: terms, notices and deadlines counted from a
#: day near the end of the calendar would fall outside it.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


class IsoDate(click.ParamType):
    """A ``YYYY-MM-DD`` date option from ``FIRST_DAY`` to ``LAST_DAY``; anything else is a
    one-line usage error."""

    name = "date"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            if len(value) != 10:
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)
        if not FIRST_DAY <= day <= LAST_DAY:
            self.fail(f"{value!r} is not a day from {FIRST_DAY} to {LAST_DAY}", param, ctx)
        return day


ISO_DATE = IsoDate()


def find_contract(number):
    contract = db.session.scalar(select(Contract).where(Contract.number == number))
    if contract is None:
        raise click.ClickException(f"unknown contract number {number!r}")
    return contract
