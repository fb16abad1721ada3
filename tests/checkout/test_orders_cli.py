"""``portal orders record-payment`` and ``portal orders expire``."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.orders.services import place_order
from portal.renewals.services import issue_quote


@pytest.fixture
def offline_order(make_checkout, today):
    contract, link, _ = make_checkout()
    quote = issue_quote(contract, today)
    return place_order(quote, "basic", 12, "USD", "bank_transfer", contact_id=link.contact_id,
                       today=today, actor="test")


@pytest.mark.parametrize("args, message", [
    (["--amount", "899.99", "--currency", "USD"], "expects 900.00 USD"),
    (["--amount", "900.00", "--currency", "EUR"], "expects 900.00 USD"),
    (["--amount", "900.001", "--currency", "USD"], "more decimals"),
    (["--amount", "-900", "--currency", "USD"], "'-900'"),
    (["--amount", "lots", "--currency", "USD"], "not written as digits"),
    (["--amount", "900.00", "--currency", "XYZ"], "unknown currency"),
])
def test_a_payment_that_does_not_match_changes_nothing(cli, offline_order, args, message):
    contract = offline_order.contract
    end = contract.end_date
    result = cli("orders", "record-payment", offline_order.reference, *args,
                 "--reference", "BANK-1")
    assert result.exit_code != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    db.session.refresh(contract)
    assert contract.end_date == end and offline_order.status == "awaiting_payment"


def test_unknown_reference_and_bad_date_are_one_line_errors(cli, offline_order):
    result = cli("orders", "record-payment", "RN-NOPE", "--amount", "900.00",
                 "--currency", "USD", "--reference", "B")
    assert result.exit_code != 0 and "unknown order reference" in result.stderr
    result = cli("orders", "record-payment", offline_order.reference, "--amount", "900.00",
                 "--currency", "USD", "--reference", "B", "--date", "yesterday")
    assert result.exit_code != 0


def test_expire_lapses_unpaid_offline_orders(cli, offline_order, today):
    result = cli("orders", "expire", "--date", (today + timedelta(days=30)).isoformat())
    assert result.exit_code == 0 and "0 order(s) expired" in result.output
    result = cli("orders", "expire", "--date", (today + timedelta(days=31)).isoformat())
    assert result.exit_code == 0 and offline_order.reference in result.output
    assert offline_order.status == "expired"
    late = cli("orders", "record-payment", offline_order.reference, "--amount", "900.00",
               "--currency", "USD", "--reference", "LATE-1")
    assert late.exit_code != 0 and "is expired" in late.stderr


def test_demo_prints_a_working_renewal_link_per_contract(cli, web):
    result = cli("demo")
    assert result.exit_code == 0, result.output
    urls = [line.strip() for line in result.output.splitlines() if "/r/" in line]
    assert len(urls) == 17
    assert all(url.startswith("http://127.0.0.1:5000/r/") for url in urls)
    again = cli("demo")
    assert [line.strip() for line in again.output.splitlines() if "/r/" in line] == urls
    web.get(urls[0].removeprefix("http://127.0.0.1:5000"))
    page = web.get("/renewal").get_data(as_text=True)
    assert "SNS-100001" in page and "data-amount-due" in page
    assert 'data-other-due="3"' in page  # Contoso's three other contracts that are due


def test_a_payment_for_a_cancelled_order_is_refused_and_kept_to_return(cli, offline_order):
    from portal.orders.models import Payment
    from portal.orders.services import cancel_offline_order

    order = offline_order
    contract = order.contract
    end = contract.end_date
    cancel_offline_order(order.id, "desk@example.com", "ordered twice")
    db.session.commit()
    result = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                 "--currency", "USD", "--reference", "BANK-AFTER")
    assert result.exit_code != 0
    assert f"order {order.reference} is cancelled" in result.output
    assert "paid back" in result.output
    db.session.refresh(contract)
    assert contract.end_date == end
    kinds = db.session.scalars(select(Payment.kind).where(Payment.order_id == order.id)).all()
    assert kinds == ["to_return"]
