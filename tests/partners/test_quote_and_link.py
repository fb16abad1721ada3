"""A partner's quote of its own contract and the renewal link it has emailed to the
customer (docs/interfaces.md, "Partner API")."""
import email
import email.policy
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.contracts.models import Contact
from portal.extensions import db
from portal.links.models import RenewalLink
from portal.mail.models import OutboxMessage
from portal.partners.models import PartnerLinkRequest
from tests import factories
from tests.access import bearer

API = "/api/partner/v1"


def _quote(client, key, number, **params):
    return client.get(f"{API}/contracts/{number}/quote", headers=bearer(key),
                      query_string=params)


@pytest.mark.parametrize("pay_currency", [None, "USD", "EUR"])
def test_quote_is_the_command_line_quote(cli, client, make_contract, partners, today,
                                         pay_currency):
    factories.rate("EUR", "1", today - timedelta(days=1))
    partner, key = partners["A"]
    contract = make_contract(days_to_end=30, partner=partner)
    args = ["quote", contract.number, "--json"]
    params = {}
    if pay_currency:
        args += ["--pay-currency", pay_currency]
        params["pay_currency"] = pay_currency
    expected = json.loads(cli(*args).stdout)
    response = _quote(client, key, contract.number, **params)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == expected
    if pay_currency:
        assert response.get_json()["payment"]["currency"] == pay_currency.upper()
        assert response.get_json()["payment"]["amount_due"]


def test_quote_refuses_what_the_checkout_does_not_offer(client, make_contract, partners,
                                                        today):
    partner, key = partners["A"]
    factories.rate("GBP", "0.84", today - timedelta(days=8))  # stale: not offered
    contract = make_contract(days_to_end=30, partner=partner)
    response = _quote(client, key, contract.number, pay_currency="GBP")
    assert response.status_code == 409
    assert response.get_json()["error"] == "currency_not_offered"
    assert "pay_currency must be one of USD" in response.get_json()["message"]
    # LVL and LTL are currencies of the portal, never paid in: known, so not offered.
    for currency in ("LVL", "LTL"):
        response = _quote(client, key, contract.number, pay_currency=currency)
        assert response.status_code == 409, currency
        assert response.get_json()["error"] == "currency_not_offered"
    for currency in ("XYZ", "", "US", "usd", "lvl", "EURO"):
        response = _quote(client, key, contract.number, pay_currency=currency)
        assert response.status_code == 400, currency
        body = response.get_json()
        assert body["error"] == "bad_request" and "pay_currency" in body["message"]


def test_a_lvl_quote_is_paid_in_eur_only(client, partners, today):
    """A contract priced in LVL (like the demo's SNS-100013): its own currency is known
    but never a payment currency, so asking to pay in it is a 409, and EUR is offered
    with no FX fee."""
    partner, key = partners["A"]
    factories.launch("LV", "2013-06-10")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    plist = factories.price_list("BALTIC-LVL", "LVL", {("VS-ENT", "basic", 12): "300.00"})
    contract = factories.contract(plist, country="LV", end_date=today + timedelta(days=28))
    contract.partner_id = partner.id
    db.session.flush()
    refused = _quote(client, key, contract.number, pay_currency="LVL")
    assert refused.status_code == 409
    assert refused.get_json() == {
        "error": "currency_not_offered", "status": 409,
        "message": "pay_currency must be one of EUR for this quote today"}
    paid = _quote(client, key, contract.number, pay_currency="EUR")
    assert paid.status_code == 200, paid.get_json()
    payment = paid.get_json()["payment"]
    assert (payment["currency"], payment["fx_fee"]) == ("EUR", "0.00")


def test_quote_of_an_unpriceable_contract_is_409(client, partners, today):
    partner, key = partners["A"]
    factories.launch("DE", "2013-06-10")
    plist = factories.price_list("EMEA-EUR", "EUR", {("VS-ENT", "basic", 12): "400.00"})
    contract = factories.contract(plist, country="DE", end_date=today + timedelta(days=30))
    contract.partner_id = partner.id
    db.session.flush()
    response = _quote(client, key, contract.number)
    assert response.status_code == 409 and response.get_json()["error"] == "not_quotable"


def test_quote_and_link_of_another_partner_are_404(client, make_contract, partners):
    partner_b, _ = partners["B"]
    _, key_a = partners["A"]
    theirs = make_contract(partner=partner_b)
    assert _quote(client, key_a, theirs.number).status_code == 404
    response = client.post(f"{API}/contracts/{theirs.number}/renewal-link",
                           headers=bearer(key_a))
    assert response.status_code == 404
    assert _quote(client, key_a, "NO-SUCH").get_json() == response.get_json()
    assert db.session.scalar(select(func.count(PartnerLinkRequest.id))) == 0


def _staged_links():
    return db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key.like("partner-link:%")).order_by(OutboxMessage.id)).all()


def test_renewal_link_is_emailed_to_the_contacts_once_a_day(client, make_contract, partners,
                                                            today):
    partner, key = partners["A"]
    contract = make_contract(partner=partner)
    contract.account.contacts.append(Contact(name="Lee", email="lee@customer.example",
                                             language="de", renewals=True))
    contract.account.contacts.append(Contact(name="No Mail", email="quiet@customer.example",
                                             renewals=False))
    db.session.flush()
    url = f"{API}/contracts/{contract.number}/renewal-link"
    response = client.post(url, headers=bearer(key))
    assert response.status_code == 202
    assert response.get_json() == {"status": "sent", "recipients": 2}
    staged = _staged_links()
    assert sorted(m.to for m in staged) == sorted([contract.account.contacts[0].email,
                                                   "lee@customer.example"])
    links = db.session.scalars(select(RenewalLink).where(RenewalLink.purpose == "partner")).all()
    assert len(links) == 2
    german = next(m for m in staged if m.to == "lee@customer.example")
    text = email.message_from_bytes(german.mime, policy=email.policy.default)
    body = text.get_body(preferencelist=("plain",)).get_content()
    assert "Partner A" in body and contract.number in body and "/r/" in body
    assert german.locale == "de"
    # The link goes to the customer only: nothing of it is in the partner's answer.
    assert "/r/" not in response.get_data(as_text=True)

    again = client.post(url, headers=bearer(key))
    assert again.status_code == 429 and again.get_json()["error"] == "too_many"
    assert len(_staged_links()) == 2


@pytest.mark.parametrize("options, days_to_end", [
    ({"status": "cancelled"}, 30),
    ({}, -400),
])
def test_renewal_link_refused_when_it_cannot_renew(client, make_contract, partners, options,
                                                   days_to_end):
    partner, key = partners["A"]
    contract = make_contract(partner=partner, days_to_end=days_to_end, **options)
    response = client.post(f"{API}/contracts/{contract.number}/renewal-link",
                           headers=bearer(key))
    assert response.status_code == 409 and response.get_json()["error"] == "not_renewable"
    assert _staged_links() == []
    assert db.session.scalar(select(func.count(PartnerLinkRequest.id))) == 0
