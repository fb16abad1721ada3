"""One service records an offline payment: the staff console and ``portal orders
record-payment`` give the same answer for the same input and change nothing on a refusal."""
import html
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.orders.models import Payment
from tests.access import *  # noqa: F401,F403 - the shared staff fixtures
from tests.access import post_form


def _state(contract, order):
    db.session.expire_all()
    return (contract.end_date, contract.service_level, order.status,
            db.session.scalar(select(func.count(Payment.id))),
            db.session.scalar(select(func.count(AuditEntry.id)).where(
                AuditEntry.action != "payment.mismatch")))


def _console_answer(sales, contract, data):
    response = post_form(sales, f"/staff/contracts/{contract.number}/payment", data)
    assert response.status_code == 303
    page = html.unescape(sales.get(response.headers["Location"]).get_data(as_text=True))
    flashed = [line for line in page.splitlines() if "Not done: " in line]
    assert len(flashed) == 1, page
    return flashed[0].split("Not done: ", 1)[1].split("<", 1)[0].strip()


def _cli_answer(cli, data):
    result = cli("orders", "record-payment", data["order"], "--amount", data["amount"],
                 "--currency", data["currency"], "--date", data["received_on"],
                 "--reference", data["reference"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0].removeprefix("Error: ")


@pytest.mark.parametrize("field, value, expected", [
    ("amount", "899.995", "amount '899.995' has more decimals than USD allows (2)"),
    ("amount", "900.001", "amount '900.001' has more decimals than USD allows (2)"),
    ("amount", "899.99", "expects 900.00 USD, got 899.99 USD"),
    ("amount", "1e3", "amount '1e3' is not written as digits, e.g. 1250.00"),
    ("amount", "0", "amount '0' must be positive"),
    ("currency", "EUR", "expects 900.00 USD, got 900.00 EUR"),
    ("currency", "XYZ", "unknown currency 'XYZ'"),
    ("reference", "B", "the bank or cheque reference must be 2 to 128 characters"),
    ("order", "RN-NOPE", "unknown order reference 'RN-NOPE'"),
    ("received_on", "future", "the payment date is in the future"),
    ("received_on", "before_order", "is before order RN-"),
])
def test_console_and_command_line_refuse_alike_and_change_nothing(
        sales, cli, offline_order, today, field, value, expected):
    contract, order = offline_order
    data = {"order": order.reference, "amount": "900.00", "currency": "USD",
            "received_on": today.isoformat(), "reference": "BANK-99"}
    days = {"future": 1, "before_order": -1}  # the order was placed today
    data[field] = (today + timedelta(days=days[value])).isoformat() if value in days else value
    before = _state(contract, order)

    console = _console_answer(sales, contract, data)
    assert _state(contract, order) == before
    command_line = _cli_answer(cli, data)
    assert _state(contract, order) == before

    assert console == command_line
    assert expected in console


def test_a_payment_dated_before_its_order_is_refused_and_the_day_it_was_placed_is_not(
        sales, cli, offline_order, today):
    contract, order = offline_order
    placed = today - timedelta(days=9)
    order.placed_at = order.placed_at - timedelta(days=9)
    db.session.commit()
    data = {"order": order.reference, "amount": "900.00", "currency": "USD",
            "received_on": (placed - timedelta(days=1)).isoformat(), "reference": "BANK-7"}
    before = _state(contract, order)
    console = _console_answer(sales, contract, data)
    command_line = _cli_answer(cli, data)
    assert console == command_line == (
        f"the payment date {data['received_on']} is before order {order.reference} was "
        f"placed on {placed.isoformat()}")
    assert _state(contract, order) == before

    result = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                 "--currency", "USD", "--date", placed.isoformat(), "--reference", "BANK-7")
    assert result.exit_code == 0, result.stderr
    db.session.expire_all()
    payment = db.session.scalar(select(Payment))
    assert order.status == "paid" and payment.received_on == placed


def test_the_same_good_payment_renews_once_whichever_way_it_comes(sales, cli, offline_order,
                                                                 today):
    contract, order = offline_order
    data = {"order": order.reference.lower(), "amount": "900.00", "currency": "usd",
            "received_on": today.isoformat(), "reference": " BANK-100 "}
    response = post_form(sales, f"/staff/contracts/{contract.number}/payment", data)
    assert "now runs until" in sales.get(response.headers["Location"]).get_data(as_text=True)
    result = cli("orders", "record-payment", data["order"], "--amount", data["amount"],
                 "--currency", data["currency"], "--reference", data["reference"])
    assert result.exit_code == 0 and "already recorded" in result.output
    db.session.expire_all()
    assert order.status == "paid" and contract.end_date == order.term_end
    assert db.session.scalar(select(func.count(Payment.id))) == 1


def test_a_second_transfer_for_a_paid_order_is_kept_to_be_paid_back(cli, offline_order):
    contract, order = offline_order
    first = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                "--currency", "USD", "--reference", "BANK-TX-1")
    assert first.exit_code == 0
    end = contract.end_date
    second = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                 "--currency", "USD", "--reference", "BANK-TX-2")
    assert second.exit_code != 0
    assert "already paid" in second.stderr and "BANK-TX-2" in second.stderr
    assert "paid back" in second.stderr
    db.session.expire_all()
    assert contract.end_date == end  # renewed once
    kinds = dict(db.session.execute(select(Payment.provider_ref, Payment.kind)).all())
    assert kinds == {"BANK-TX-1": "charge", "BANK-TX-2": "to_return"}
