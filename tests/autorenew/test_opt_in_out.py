"""Opting in on the card checkout (unticked by default, the card kept at the provider),
automatic renewal shown on pages, emails and the partner API, and turning it off with a
POST form from the renewal link's page, before and after the charge."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewAttempt, AutoRenewal
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.orders.models import Payment
from portal.partners.services import contract_document
from tests.access import _cheap_password_hashing, sales, sales_user  # noqa: F401
from tests import factories
from tests.checkout.conftest import csrf_token
from tests.payments.conftest import CARDS, place_card_order
from tests.selfservice.conftest import pay_by_card


def _browser_token(stripe_emulator, number=CARDS["ok"]):
    """A card tokenised as the emulator's Stripe.js does on the card page (publishable key,
    POST /v1/tokens): ``(card id, token id)``."""
    import json
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
        "card[cvc]": "123", "key": stripe_emulator.publishable_key}).encode()
    with urllib.request.urlopen(f"{stripe_emulator.api_base}/v1/tokens", data=body,
                                timeout=10) as response:
        token = json.loads(response.read())
    return token["card"]["id"], token["id"]


def _receipt():
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "payment_received"))
    return message.mime.decode("utf-8", "replace")


def _turn_off(web):
    page = web.get("/renewal/auto-renew").get_data(as_text=True)
    return web.post("/renewal/auto-renew", data={"csrf_token": csrf_token(page), "confirm": "1"})


def test_opt_in_keeps_the_card_and_shows_automatic_renewal(renewed_by_card, web,
                                                           stripe_client, today):
    contract, order = renewed_by_card(extra_form={"auto_renew": "y"})
    assert order.auto_renew is True
    renewal = db.session.scalar(select(AutoRenewal))
    assert renewal.enabled and renewal.contract_id == contract.id
    card = stripe_client.v1.payment_methods.retrieve(renewal.card_ref)
    assert card.customer == renewal.customer_ref  # saved with the provider, not here
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert 'data-auto-renew="on"' in page
    # Every page of the link says so, in the page's language, with the way to turn it off.
    for path in ("/renewal?lang=nl", "/renewal/confirmation?lang=nl"):
        shown = web.get(path).get_data(as_text=True)
        assert 'data-auto-renew="on"' in shown and 'href="/renewal/auto-renew"' in shown
        assert "Automatic renewal is on." not in shown  # translated
    receipt = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "payment_received"))
    assert "Automatic renewal is on." in receipt.mime.decode("utf-8", "replace")
    assert contract_document(contract, today)["auto_renew"] is True
    # Turned off by the customer later: the order page does not say it failed.
    assert _turn_off(web).status_code == 200
    after = web.get("/renewal/confirmation").get_data(as_text=True)
    assert 'data-auto-renew="failed"' not in after and 'data-auto-renew="on"' not in after


def test_without_the_tick_nothing_is_kept(renewed_by_card, web, today):
    contract, order = renewed_by_card()
    assert order.auto_renew is False
    assert db.session.scalar(select(func.count()).select_from(AutoRenewal)) == 0
    assert 'data-auto-renew="on"' not in web.get("/renewal/confirmation").get_data(as_text=True)
    assert contract_document(contract, today)["auto_renew"] is False


def test_turning_off_before_the_charge_stops_it(auto_renewing, cycle, web):
    contract, token = auto_renewing("ok", days_to_end=40)
    opened = web.get(f"/r/{token}?to=auto-renew")  # the notice's link: a page, no change
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/renewal/auto-renew")
    page = web.get("/renewal/auto-renew").get_data(as_text=True)
    assert "Turn automatic renewal off" in page
    assert db.session.scalar(select(AutoRenewal.enabled)) is True
    assert web.get("/renewal/auto-renew?confirm=1").status_code == 200  # GET changes nothing
    assert db.session.scalar(select(AutoRenewal.enabled)) is True
    response = _turn_off(web)
    assert response.status_code == 200
    assert 'data-auto-renew-result="off"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(AutoRenewal.enabled)) is False
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "autorenew_off")) == 1
    report = cycle(contract.end_date - timedelta(days=14))
    assert report.charged == [] and report.failed == []
    assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)) == 0


def test_turning_off_needs_csrf(auto_renewing, web):
    _contract, token = auto_renewing("ok", days_to_end=40)
    web.get(f"/r/{token}")
    assert web.post("/renewal/auto-renew", data={"confirm": "1"}).status_code == 400
    assert db.session.scalar(select(AutoRenewal.enabled)) is True


def test_turning_off_after_the_charge_applies_from_the_next_term(auto_renewing, cycle, web):
    contract, token = auto_renewing("ok", days_to_end=40)
    old_end = contract.end_date
    assert cycle(old_end - timedelta(days=14)).charged
    new_end = contract.end_date
    assert new_end > old_end
    web.get(f"/r/{token}")
    assert _turn_off(web).status_code == 200
    db.session.expire_all()
    assert contract.end_date == new_end  # the term already paid stays
    assert cycle(new_end - timedelta(days=14)).charged == []
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


def test_turning_off_keeps_the_reason_given_and_staff_see_the_counts(auto_renewing, web,
                                                                    sales):
    contract, token = auto_renewing("ok", days_to_end=40)
    web.get(f"/r/{token}")
    page = web.get("/renewal/auto-renew").get_data(as_text=True)
    assert 'value="too_expensive"' in page and 'name="comment"' in page
    for bad in ({"reason": "x" * 40}, {"reason": "\x00"}, {"comment": "y" * 501}):
        refused = web.post("/renewal/auto-renew",
                           data={"csrf_token": csrf_token(page), "confirm": "1", **bad})
        assert refused.status_code == 400, bad  # nothing changes on bad input
        assert db.session.scalar(select(AutoRenewal.enabled)) is True
    response = web.post("/renewal/auto-renew", data={
        "csrf_token": csrf_token(page), "confirm": "1", "reason": "renew_by_hand",
        "comment": "  Our buyers raise a PO each year.  "})
    assert 'data-auto-renew-result="off"' in response.get_data(as_text=True)
    renewal = db.session.scalar(select(AutoRenewal))
    db.session.refresh(renewal)
    assert (renewal.enabled, renewal.off_reason, renewal.off_comment) == (
        False, "renew_by_hand", "Our buyers raise a PO each year.")
    console = sales.get("/staff/auto-renewal/reasons").get_data(as_text=True)
    assert 'data-reason="renew_by_hand" data-count="1"' in console
    assert "Our buyers raise a PO each year." in console and contract.number in console


def test_turning_off_without_a_reason_is_counted_as_none(auto_renewing, web, sales):
    _contract, token = auto_renewing("ok", days_to_end=40)
    web.get(f"/r/{token}")
    assert _turn_off(web).status_code == 200
    assert db.session.scalar(select(AutoRenewal.off_reason)) is None
    console = sales.get("/staff/auto-renewal/reasons").get_data(as_text=True)
    assert 'data-reason="none" data-count="1"' in console


def test_opt_in_with_the_card_pages_own_token_is_kept_and_charged_later(
        card_app, web, make_checkout, stripe_emulator, stripe_client, cycle, today):
    contract, _link, token = make_checkout(days_to_end=40)
    for day in range(5, 42, 5):
        factories.rate("USD", "1.0861", today + timedelta(days=day))
    _response, order = place_card_order(web, token, extra_form={"auto_renew": "y"})
    card_ref, card_token = _browser_token(stripe_emulator)
    assert pay_by_card(web, card_ref, card_token).json["status"] == "succeeded"
    db.session.expire_all()
    renewal = db.session.scalar(select(AutoRenewal))
    assert renewal is not None and renewal.enabled and renewal.card_ref == card_ref
    assert stripe_client.v1.payment_methods.retrieve(card_ref).customer == renewal.customer_ref
    assert "Automatic renewal is on." in _receipt()
    assert 'data-auto-renew="on"' in web.get("/renewal/confirmation").get_data(as_text=True)
    end = contract.end_date
    report = cycle(end - timedelta(days=14))
    assert report.charged and report.failed == []
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 2


def test_a_card_that_cannot_be_kept_never_shows_automatic_renewal_as_on(
        card_app, web, make_checkout, stripe_emulator, today):
    contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token, extra_form={"auto_renew": "y"})
    card_ref, _card_token = _browser_token(stripe_emulator)
    assert pay_by_card(web, card_ref).json["status"] == "succeeded"  # paid, card not saved
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AutoRenewal)) == 0
    receipt = _receipt()
    assert "Automatic renewal is on." not in receipt
    assert "Automatic renewal could not be turned on" in receipt
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert 'data-auto-renew="on"' not in page and 'data-auto-renew="failed"' in page
    assert contract_document(contract, today)["auto_renew"] is False
