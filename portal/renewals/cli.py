"""``portal quote NUMBER [--date D] [--level L] [--term N] [--pay-currency C] --json``."""
import json

import click
from flask.cli import with_appcontext

from portal.clitools import ISO_DATE, find_contract
from portal.money import amount_string
from portal.renewals import rules, services
from portal.timeutil import utc_today


@click.command("quote")
@click.argument("number")
@click.option("--date", "quote_date", type=ISO_DATE, help="Quote date (default: today, UTC).")
@click.option("--level", help="Service level of the payment option (default: the contract's).")
@click.option("--term", type=int, help="Term in months of the payment option (default: the contract's).")
@click.option("--pay-currency", help="Show the amount due when paying in this currency.")
@click.option("--json", "as_json", is_flag=True, help="Print the quote JSON.")
@with_appcontext
def quote_command(number, quote_date, level, term, pay_currency, as_json):
    """Print the renewal quote of a contract. Stores nothing."""
    contract = find_contract(number)
    quote_date = quote_date or utc_today()
    try:
        result, document = services.quote_json(contract, quote_date, level, term, pay_currency)
    except rules.RuleError as error:
        raise click.ClickException(f"{number}: {error}") from None
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(_summary(result, document))


def _summary(result, document):
    lines = [
        f"{result.contract} quoted {document['quote_date']} in {result.currency}: "
        + ("eligible for online renewal" if result.eligible else f"not eligible ({result.reason})"),
    ]
    for option in result.options:
        lines.append(
            f"  {option.service_level:<12} {option.term_months:>2} months  "
            f"{option.term_start} to {option.term_end}  "
            f"{amount_string(option.total, result.currency):>14} {result.currency}"
            f"  (USD {amount_string(option.usd_equivalent, 'USD')}"
            f"{'' if option.within_cap else ', over the online cap'})"
        )
    if document["payment"]:
        pay = document["payment"]
        lines.append(
            f"  pay in {pay['currency']}: {pay['converted']} + FX fee {pay['fx_fee']}"
            f" = {pay['amount_due']}"
        )
    return "\n".join(lines)
