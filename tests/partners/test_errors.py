"""Every error the partner API answers has the fields docs/interfaces.md promises every
error: ``{"error", "status", "message"}``, whether a view refused the request or the
framework did (an unknown path, a method the path does not take, a body too large, a
fault). Each status is reached through the real routes."""
import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource

from portal.partners import services
from portal.partners.openapi import openapi_document
from portal.web import MAX_REQUEST_BYTES
from tests.access import bearer

API = "/api/partner/v1"


def assert_api_error(response, status, code):
    """``response`` is the JSON error ``status`` ``code``, valid by the document's Error."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "status", "message"}, body
    assert body["error"] == code and body["status"] == status
    assert isinstance(body["message"], str) and body["message"].strip()
    document = openapi_document()
    registry = Registry().with_resource("urn:api", Resource.opaque(document))
    validator = OAS30Validator({"$ref": "urn:api#/components/schemas/Error"},
                               registry=registry)
    assert [error.message for error in validator.iter_errors(body)] == []
    return body


@pytest.fixture
def world(app, client, make_contract, partners, monkeypatch):
    """``(key, contract number)`` of partner A, with room for the requests of one test."""
    monkeypatch.setitem(app.config, "PARTNER_API_RATE_LIMIT", "1000 per minute")
    partner, key = partners["A"]
    return key, make_contract(days_to_end=30, partner=partner).number


@pytest.mark.parametrize("path, query, status, code", [
    ("/contracts", {"status": "bogus"}, 400, "bad_request"),
    ("/contracts/{n}/quote", {"pay_currency": "XYZ"}, 400, "bad_request"),
    ("/contracts/{n}/quote", {"pay_currency": "LVL"}, 409, "currency_not_offered"),
])
def test_400_and_409_a_query_the_view_refuses(client, world, path, query, status, code):
    key, number = world
    response = client.get(API + path.format(n=number), headers=bearer(key), query_string=query)
    assert_api_error(response, status, code)


def test_401_no_key(client, world):
    _, number = world
    response = client.get(f"{API}/contracts/{number}")
    assert_api_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/contracts/NO-SUCH", "/contracts/NO-SUCH/quote",
                                  "/no-such-path", "/contracts/x/y/z"])
def test_404_unknown_contract_or_path(client, world, path):
    key, _ = world
    assert_api_error(client.get(API + path, headers=bearer(key)), 404, "not_found")


@pytest.mark.parametrize("method, path", [("post", "/contracts"), ("put", "/contracts/{n}"),
                                          ("delete", "/contracts/{n}/quote"),
                                          ("get", "/contracts/{n}/renewal-link"),
                                          ("patch", "/webhooks")])
def test_405_a_method_the_path_does_not_take(client, world, method, path):
    key, number = world
    response = getattr(client, method)(API + path.format(n=number), headers=bearer(key))
    body = assert_api_error(response, 405, "not_allowed")
    assert response.headers["Allow"]
    assert "Allow" in body["message"]


def test_413_a_body_too_large(client, world):
    key, _ = world
    url = "https://hooks.partner.example/" + "x" * MAX_REQUEST_BYTES
    response = client.post(f"{API}/webhooks", headers=bearer(key), json={"url": url})
    assert_api_error(response, 413, "too_large")
    assert client.get(f"{API}/webhooks", headers=bearer(key)).get_json()["webhooks"] == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "multipart/form-data; boundary=x"])
def test_415_a_body_that_is_not_json(client, world, content_type):
    key, _ = world
    response = client.post(f"{API}/webhooks", headers=bearer(key), content_type=content_type,
                           data='{"url": "https://hooks.partner.example/a"}')
    assert_api_error(response, 415, "unsupported_media_type")
    assert client.get(f"{API}/webhooks", headers=bearer(key)).get_json()["webhooks"] == []


def test_429_from_the_rate_limit_and_from_the_daily_link(app, client, world, monkeypatch):
    key, number = world
    first = client.post(f"{API}/contracts/{number}/renewal-link", headers=bearer(key))
    assert first.status_code == 202
    again = client.post(f"{API}/contracts/{number}/renewal-link", headers=bearer(key))
    assert_api_error(again, 429, "too_many")
    monkeypatch.setitem(app.config, "PARTNER_API_RATE_LIMIT", "1 per minute")
    assert client.get(f"{API}/contracts", headers=bearer(key)).status_code == 200
    assert_api_error(client.get(f"{API}/contracts", headers=bearer(key)), 429, "too_many")


def test_500_a_fault(client, world, monkeypatch):
    key, _ = world

    def broken(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "partner_contracts", broken)
    response = client.get(f"{API}/contracts", headers=bearer(key))
    body = assert_api_error(response, 500, "error")
    assert "database" not in body["message"]  # the fault's own words stay in the log
