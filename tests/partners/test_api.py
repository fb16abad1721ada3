"""The partner API (docs/interfaces.md, "Partner API") through the test client."""
import re
from datetime import timedelta

import pytest
from openapi_spec_validator import validate

from sqlalchemy import func, select

from portal.contracts.models import Partner
from portal.extensions import db
from portal.orders.services import place_order
from portal.partners.keys import ensure_partner, issue_key
from portal.partners.models import PartnerApiKey
from portal.partners.openapi import openapi_document
from portal.renewals.services import issue_quote
from tests import factories
from tests.access import bearer

API = "/api/partner/v1"


@pytest.fixture
def partner_a(partners):
    return partners["A"]


def _get(client, path, key, **params):
    return client.get(API + path, headers=bearer(key), query_string=params)


@pytest.mark.parametrize("days_to_end, cancelled, status", [
    (61, False, "active"),
    (60, False, "expiring"),
    (0, False, "expiring"),
    (-1, False, "expired"),
    (-400, False, "expired"),
    (30, True, "cancelled"),
    (-30, True, "cancelled"),
])
def test_status(client, make_contract, partner_a, days_to_end, cancelled, status):
    partner, key = partner_a
    contract = make_contract(days_to_end=days_to_end, partner=partner,
                             status="cancelled" if cancelled else "active")
    assert _get(client, f"/contracts/{contract.number}", key).get_json()["status"] == status
    for wanted in ("active", "expiring", "expired", "cancelled"):
        listed = _get(client, "/contracts", key, status=wanted).get_json()["contracts"]
        assert [c["number"] for c in listed] == ([contract.number] if wanted == status else [])


def test_contract_document(client, make_contract, partner_a, today):
    partner, key = partner_a
    contract = make_contract(days_to_end=45, partner=partner, number="SNS-API-1")
    response = _get(client, "/contracts/SNS-API-1", key)
    assert response.status_code == 200
    assert response.get_json() == {
        "number": "SNS-API-1",
        "account": {"name": "Account SNS-API-1", "country": "US"},
        "status": "expiring",
        "service_level": "basic",
        "term_months": 12,
        "end_date": (today + timedelta(days=45)).isoformat(),
        "auto_renew": False,
        "renewal": {"eligible": True, "reason": None, "state": "open", "open_order": None},
    }
    assert contract.number == "SNS-API-1"


def test_open_order_and_already_renewed(client, make_contract, partner_a, today):
    partner, key = partner_a
    contract = make_contract(days_to_end=20, partner=partner)
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    renewal = _get(client, f"/contracts/{contract.number}", key).get_json()["renewal"]
    assert renewal["eligible"] is False and renewal["reason"] == "already_renewed"
    open_order = renewal["open_order"]
    assert {k: open_order[k] for k in ("status", "method", "amount_due", "currency")} == {
        "status": "awaiting_payment", "method": "bank_transfer", "amount_due": "900.00",
        "currency": "USD"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", open_order["placed_at"])
    assert open_order["placed_at"].startswith(order.placed_at.date().isoformat())


def test_reasons_from_the_rules(client, make_contract, partner_a):
    partner, key = partner_a
    unlaunched = make_contract(partner=partner, country="AQ")
    assert _get(client, f"/contracts/{unlaunched.number}", key).get_json()["renewal"] == {
        "eligible": False, "reason": "not_launched", "state": "not_online", "open_order": None}


def test_missing_rate_is_reported_not_a_500(client, app, partner_a, today):
    """A EUR contract with no USD rate cannot be priced: ineligible, and why."""
    partner, key = partner_a
    factories.launch("DE", "2013-06-10")
    plist = factories.price_list("EMEA-EUR", "EUR", {("VS-ENT", "basic", 12): "400.00"})
    priced = factories.contract(plist, country="DE", end_date=today + timedelta(days=30))
    unlaunched = factories.contract(plist, country="AQ", end_date=today + timedelta(days=30))
    for contract in (priced, unlaunched):
        contract.partner_id = partner.id
    db.session.flush()
    assert _get(client, f"/contracts/{priced.number}", key).get_json()["renewal"] == {
        "eligible": False, "reason": "rate_unavailable", "state": "not_online",
        "open_order": None}
    assert _get(client, f"/contracts/{unlaunched.number}", key).get_json()["renewal"][
        "reason"] == "not_launched"
    assert _get(client, "/contracts", key).status_code == 200


def test_pagination_is_stable_and_complete(client, make_contract, partner_a):
    partner, key = partner_a
    numbers = sorted(make_contract(partner=partner, number=f"SNS-P{n}").number
                     for n in (5, 3, 9, 1, 7))
    seen = []
    for page in (1, 2, 3):
        body = _get(client, "/contracts", key, page=page, per_page=2).get_json()
        assert (body["page"], body["per_page"], body["total"]) == (page, 2, 5)
        seen += [c["number"] for c in body["contracts"]]
    assert seen == numbers
    assert _get(client, "/contracts", key, page=4, per_page=2).get_json()["contracts"] == []
    assert _get(client, "/contracts", key).get_json()["per_page"] == 50


@pytest.mark.parametrize("params", [
    {"status": "bogus"}, {"status": ""}, {"status": "ACTIVE"}, {"page": "0"}, {"page": "-1"},
    {"page": "abc"}, {"page": "1.5"}, {"per_page": "0"}, {"per_page": "101"},
    {"per_page": "٣"}, {"page": "9" * 30}, {"stauts": "expired"},
    {"status": ["active", "expired"]},
])
def test_bad_query_is_400_json(client, partner_a, params):
    _, key = partner_a
    response = _get(client, "/contracts", key, **params)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request" and body["status"] == 400 and body["message"]


@pytest.mark.parametrize("number", ["NO-SUCH", "x" * 65, "a\x00b", "SNS-%", "..", "' OR 1=1 --"])
def test_unknown_numbers_are_404_json(client, partner_a, number):
    _, key = partner_a
    response = client.get(f"{API}/contracts/{number}", headers=bearer(key))
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_contract_takes_no_query_parameters(client, make_contract, partner_a):
    partner, key = partner_a
    contract = make_contract(partner=partner)
    response = _get(client, f"/contracts/{contract.number}", key, expand="all")
    assert response.status_code == 400 and "expand" in response.get_json()["message"]


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic cGs6eA==", "Bearer pk_not-a-key", "Bearer " + "x" * 5000,
    "bearer\tpk_x",
])
def test_bad_or_missing_key_is_401_json(client, make_contract, partner_a, header):
    partner, _ = partner_a
    contract = make_contract(partner=partner)
    headers = {"Authorization": header} if header is not None else {}
    for path in ("/contracts", f"/contracts/{contract.number}"):
        response = client.get(API + path, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"


def test_other_methods_are_405_json(client, partner_a):
    _, key = partner_a
    response = client.post(f"{API}/contracts", headers=bearer(key))
    assert response.status_code == 405
    assert response.get_json()["error"] == "not_allowed"


def test_rate_limit_per_key(app, client, partners, monkeypatch):
    monkeypatch.setitem(app.config, "PARTNER_API_RATE_LIMIT", "3 per minute")
    _, key_a = partners["A"]
    _, key_b = partners["B"]
    codes = [_get(client, "/contracts", key_a).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = _get(client, "/contracts", key_a)
    assert limited.status_code == 429 and limited.get_json()["error"] == "too_many"
    assert _get(client, "/contracts", key_b).status_code == 200


def test_openapi_document_is_valid_and_public(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document == openapi_document()
    assert set(document["paths"]) == {
        "/contracts", "/contracts/{number}", "/contracts/{number}/quote",
        "/contracts/{number}/renewal-link", "/webhooks", "/webhooks/{id}", "/events"}
    routes = {rule.rule.removeprefix(API).replace("<number>", "{number}")
              .replace("<webhook_id>", "{id}")
              for rule in client.application.url_map.iter_rules()
              if rule.rule.startswith(API) and not rule.rule.endswith("openapi.json")}
    assert routes == set(document["paths"])


# --- command line ---


def test_partner_add_prints_a_working_key_once(cli, client, make_contract):
    result = cli("partner", "add", "NEWP", "--name", "New Partner Ltd")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("pk_") and len(key) > 40
    partner = ensure_partner("NEWP")
    assert partner.name == "New Partner Ltd"
    contract = make_contract(partner=partner)
    assert _get(client, f"/contracts/{contract.number}", key).status_code == 200
    # A second key for the same partner; both work.
    second = cli("partner", "add", "NEWP").stdout.strip().splitlines()[-1]
    assert second != key
    assert _get(client, "/contracts", second).get_json()["total"] == 1
    assert _get(client, "/contracts", key).status_code == 200


def test_revoke_key(cli, client):
    key = cli("partner", "add", "REVP").stdout.strip().splitlines()[-1]
    assert _get(client, "/contracts", key).status_code == 200
    result = cli("partner", "revoke-key", key[:11])
    assert result.exit_code == 0, result.output
    assert _get(client, "/contracts", key).status_code == 401
    again = cli("partner", "revoke-key", key[:11])
    assert again.exit_code != 0 and "already revoked" in again.output


@pytest.mark.parametrize("args, message", [
    (("revoke-key", "pk_nothing"), "no API key with prefix"),
    (("add", "has space"), "is not a partner code"),
    (("add", ""), "is not a partner code"),
])
def test_partner_cli_errors(cli, args, message):
    def counts():
        return (db.session.scalar(select(func.count(Partner.id))),
                db.session.scalar(select(func.count(PartnerApiKey.id))))

    before = counts()
    result = cli("partner", *args)
    assert result.exit_code != 0 and message in result.output
    assert counts() == before


def test_keys_are_stored_hashed(app, partners):
    partner, key = partners["A"]
    row, fresh = issue_key(partner)
    assert fresh not in (row.key_hash, row.prefix) and fresh.startswith(row.prefix)
    assert len(row.key_hash) == 64


def test_responses_validate_against_the_document(client, make_contract, partner_a, today):
    """Every contract, with and without an open order, is valid by the document's own
    schema under OpenAPI 3.0 rules (``nullable`` needs a ``type`` beside it)."""
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource

    partner, key = partner_a
    make_contract(days_to_end=45, partner=partner)
    ordered = make_contract(days_to_end=20, partner=partner)
    place_order(issue_quote(ordered, today), "basic", 12, "USD", "bank_transfer",
                contact_id=None, today=today, actor="customer")
    document = openapi_document()
    registry = Registry().with_resource("urn:api", Resource.opaque(document))
    schema = {"$ref": "urn:api#/components/schemas/Contract"}
    validator = OAS30Validator(schema, registry=registry)
    contracts = _get(client, "/contracts", key).get_json()["contracts"]
    assert {c["renewal"]["open_order"] is None for c in contracts} == {True, False}
    for contract in contracts:
        errors = [error.message for error in validator.iter_errors(contract)]
        assert not errors, (contract["number"], errors)



def test_staff_console_and_partner_api_share_the_renewal_state(client, sales, make_contract,
                                                               partner_a, today):
    partner, key = partner_a
    contract = make_contract(days_to_end=20, partner=partner)

    def states():
        api = _get(client, f"/contracts/{contract.number}", key).get_json()["renewal"]["state"]
        page = sales.get(f"/staff/contracts/{contract.number}").get_data(as_text=True)
        return api, re.search(r'data-renewal-state="([a-z_]+)"', page).group(1)

    assert states() == ("open", "open")
    place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                contact_id=None, today=today, actor="customer")
    db.session.commit()
    # The rule book's reason is already_renewed, but nothing is renewed until it is paid.
    assert states() == ("awaiting_payment", "awaiting_payment")
