"""Billing details on the checkout (purchase order, VAT or tax number checked per country,
billing address) carried to the invoice; the customer cancelling an offline order; the
14-day withdrawal notice for customers in the EEA, Switzerland and GB."""
import email
import email.policy

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.services import invoice_for
from portal.mail.models import OutboxMessage
from portal.orders.models import Order
from portal.orders.services import record_payment
from tests.checkout.conftest import csrf_token, open_checkout
from tests.checkout.test_orders import _order_form, _orders


def _place(web, token, **fields):
    page = open_checkout(web, token).get_data(as_text=True)
    return web.post("/renewal/order", data=_order_form(page, **fields))


def _mail_text(kind_key):
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.key.like(kind_key)))
    mail = email.message_from_bytes(row.mime, policy=email.policy.default)
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_billing_details_go_on_the_order_and_the_invoice(web, make_checkout, today):
    contract, _link, token = make_checkout(country="GB")
    response = _place(web, token, po_number=" PO-2027-118 ", tax_id="gb 980 7806 84",
                      billing_address="Buyer Ltd\nAccounts Payable\n1 High Street, Leeds")
    assert response.status_code == 303
    [order] = _orders(contract)
    assert (order.po_number, order.tax_id) == ("PO-2027-118", "GB 980 7806 84")
    assert order.billing_address.splitlines()[1] == "Accounts Payable"
    # Cancelled and ordered again: the account's tax number and address are prefilled.
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    web.post("/renewal/order/cancel", data={"csrf_token": csrf_token(page)})
    page = open_checkout(web, token).get_data(as_text=True)
    assert 'value="GB 980 7806 84"' in page and "Accounts Payable" in page
    assert "PO-2027-118" not in page  # a purchase order number is for one purchase
    response = web.post("/renewal/order", data=_order_form(
        page, po_number="PO-2027-119", tax_id="GB 980 7806 84",
        billing_address="Buyer Ltd\nAccounts Payable\n1 High Street, Leeds"))
    order = db.session.scalar(select(Order).where(Order.status == "awaiting_payment"))
    record_payment(order.id, provider="offline", provider_ref="BANK-BILL", amount=order.amount_due,
                   currency=order.pay_currency, received_on=today, actor="desk")
    db.session.commit()
    buyer = invoice_for(order).content["buyer"]
    assert buyer["po_number"] == "PO-2027-119" and buyer["tax_id"] == "GB 980 7806 84"
    assert buyer["address"] == ["Buyer Ltd", "Accounts Payable", "1 High Street, Leeds"]


def test_billing_details_of_an_offline_order_can_be_changed_until_it_is_paid(
        web, make_checkout, today):
    contract, _link, token = make_checkout(country="GB")
    _place(web, token, po_number="PO-1", tax_id="GB980780684")
    [order] = _orders(contract)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert "data-billing-save" in page and 'value="PO-1"' in page

    def change(**fields):
        return web.post("/renewal/order/billing", data={"csrf_token": csrf_token(page),
                                                       **fields})

    refused = change(po_number="PO-2", tax_id="GB123")  # not a GB VAT number
    assert refused.status_code == 400
    assert "does not have the format of your country" in refused.get_data(as_text=True)
    assert change(po_number="P" * 65).status_code == 400
    db.session.refresh(order)
    assert (order.po_number, order.tax_id) == ("PO-1", "GB980780684")
    response = change(po_number=" PO-2 ", tax_id="gb 980 7806 84",
                      billing_address="Buyer Ltd\nAccounts Payable")
    assert response.status_code == 303
    db.session.refresh(order)
    assert (order.po_number, order.tax_id, order.billing_address) == (
        "PO-2", "GB 980 7806 84", "Buyer Ltd\nAccounts Payable")
    record_payment(order.id, provider="offline", provider_ref="BANK-BILL-2",
                   amount=order.amount_due, currency=order.pay_currency, received_on=today,
                   actor="desk")
    db.session.commit()
    assert invoice_for(order).content["buyer"]["po_number"] == "PO-2"
    # Paid: the invoice is issued, the details no longer change.
    assert change(po_number="PO-3").status_code == 303
    db.session.refresh(order)
    assert order.po_number == "PO-2"
    assert "data-billing-save" not in web.get("/renewal/confirmation").get_data(as_text=True)


@pytest.mark.parametrize(("country", "tax_id"), [("GB", "GB123"), ("DE", "DE13669597"),
                                                 ("GB", "x" * 33)])
def test_a_tax_number_of_the_wrong_format_is_refused_and_orders_nothing(
        web, make_checkout, country, tax_id):
    contract, _link, token = make_checkout(country=country)
    response = _place(web, token, tax_id=tax_id)
    assert response.status_code == 400
    assert _orders(contract) == []
    if len(tax_id) <= 32:
        assert "does not have the format of your country" in response.get_data(as_text=True)


def test_a_country_without_a_known_format_takes_the_number_as_given(web, make_checkout):
    contract, _link, token = make_checkout()  # US
    assert _place(web, token, tax_id="12-3456789").status_code == 303
    assert _orders(contract)[0].tax_id == "12-3456789"


def test_the_customer_cancels_an_offline_order_and_can_order_again(web, make_checkout):
    contract, _link, token = make_checkout()
    _place(web, token)
    [order] = _orders(contract)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert "data-cancel-order" in page
    assert web.post("/renewal/order/cancel").status_code == 400  # no CSRF token: nothing
    db.session.refresh(order)
    assert order.status == "awaiting_payment"
    response = web.post("/renewal/order/cancel", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/renewal")
    db.session.refresh(order)
    assert order.status == "cancelled" and order.cancelled_by.startswith("customer:")
    assert _place(web, token, payment_method="check").status_code == 303
    statuses = sorted((o.method, o.status) for o in _orders(contract))
    assert statuses == [("bank_transfer", "cancelled"), ("check", "awaiting_payment")]


def test_the_customer_switches_an_offline_order_to_another_method(web, make_checkout):
    contract, _link, token = make_checkout()
    _place(web, token)
    [order] = _orders(contract)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert "data-switch-method" in page and '<option value="check">' in page
    assert '<option value="bank_transfer">' not in page  # the order's own method
    response = web.post("/renewal/order/method",
                        data={"csrf_token": csrf_token(page), "payment_method": "check"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/confirmation")
    statuses = sorted((o.method, o.status) for o in _orders(contract))
    assert statuses == [("bank_transfer", "cancelled"), ("check", "awaiting_payment")]
    new = next(o for o in _orders(contract) if o.status == "awaiting_payment")
    text, _html = _mail_text(f"order-confirmation:{new.reference}")
    assert new.reference in text  # the new order's payment instructions, by email
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert f'data-payment-reference="{new.reference}"' in page
    assert f'data-amount-due="{new.amount_due:.2f}" data-currency="USD"' in page


@pytest.mark.parametrize("method", ["ideal", "visa", "", "x" * 40])
def test_a_switch_to_a_method_not_offered_changes_nothing(web, make_checkout, method):
    contract, _link, token = make_checkout()
    _place(web, token)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    response = web.post("/renewal/order/method",
                        data={"csrf_token": csrf_token(page), "payment_method": method})
    assert response.status_code == 409
    assert [(o.method, o.status) for o in _orders(contract)] == [
        ("bank_transfer", "awaiting_payment")]


@pytest.mark.parametrize(("country", "told"), [("DE", True), ("GB", True), ("CH", True),
                                               ("NO", True), ("US", False), ("JP", False)])
def test_the_withdrawal_right_is_told_in_the_eea_switzerland_and_gb(web, make_checkout, country,
                                                                    told):
    contract, _link, token = make_checkout(country=country)
    _place(web, token)
    [order] = _orders(contract)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert ('data-withdrawal-days="14"' in page) is told
    text, html = _mail_text(f"order-confirmation:{order.reference}")
    assert ('data-withdrawal-days="14"' in html) is told  # in the contact's language
    if country == "GB":
        assert "within 14 calendar days" in text


@pytest.mark.parametrize(("country", "language", "on_page", "in_email"), [
    ("GB", "en", "use the refund link on this page or contact the renewals desk",
     "use the refund link on your order page or reply to this email"),
    ("DE", "de", "den Erstattungslink auf dieser Seite oder wenden Sie sich an das "
                 "Verlängerungsteam",
     "den Erstattungslink auf Ihrer Bestellseite oder antworten Sie auf diese E-Mail"),
])
def test_the_confirmation_page_says_how_to_withdraw_from_a_page(
        web, make_checkout, country, language, on_page, in_email):
    contract, _link, token = make_checkout(country=country, language=language)
    _place(web, token)
    [order] = _orders(contract)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert on_page in page
    assert in_email not in page and "reply to this email" not in page
    text, html = _mail_text(f"order-confirmation:{order.reference}")
    assert in_email in text and in_email in html  # an email may still be answered
