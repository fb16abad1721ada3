"""The Stripe webhook: verified signature, deduplication, replays and out-of-order events."""
import pytest
import stripe
from sqlalchemy import func, select

from portal.extensions import db
from portal.orders.models import AttemptState, Payment
from portal.payments.models import ProcessedEvent
from portal.payments.webhooks import WEBHOOK_HANDLERS
from portal.renewals.rules import RuleError
from tests.payments.conftest import place_card_order, sign, signed_event


def _charged_behind_the_portal(stripe_client, order, card_ref, declined=False):
    """The card is charged at Stripe while the customer's browser never returns; with
    ``declined`` the card must be refused (Stripe answers with a card error)."""
    stripe_client.v1.payment_intents.update(order.provider_payment_id,
                                            params={"payment_method": card_ref})
    if declined:
        with pytest.raises(stripe.CardError):
            stripe_client.v1.payment_intents.confirm(order.provider_payment_id)
    else:
        intent = stripe_client.v1.payment_intents.confirm(order.provider_payment_id)
        assert intent.status == "succeeded", intent.status


def _post(web, payload, signature):
    return web.post("/stripe/webhook", data=payload, content_type="application/json",
                    headers={"Stripe-Signature": signature})


def _payments(order):
    return db.session.scalar(select(func.count()).select_from(Payment)
                             .where(Payment.order_id == order.id))


def test_verified_event_renews_once_and_replays_change_nothing(
        card_app, web, make_checkout, card, stripe_client, stripe_emulator):
    contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    _charged_behind_the_portal(stripe_client, order, card("ok"))
    secret = stripe_emulator.webhook_secret
    payload, signature = signed_event(secret, "payment_intent.succeeded",
                                      order.provider_payment_id, event_id="evt_first")
    response = _post(web, payload, signature)
    assert response.status_code == 200 and response.json["outcome"] == "renewed"
    db.session.refresh(contract)
    assert contract.end_date == order.term_end and order.status == "paid"
    # The same event again (Stripe retries): nothing happens.
    assert _post(web, payload, signature).json["outcome"] == "duplicate"
    # Another event for the same payment, and a late "failed" event: renewed once only.
    for event_type in ("charge.succeeded", "payment_intent.payment_failed"):
        again = _post(web, *signed_event(secret, event_type, order.provider_payment_id))
        assert again.json["outcome"] == "already_paid"
    assert _payments(order) == 1
    db.session.refresh(contract)
    assert contract.end_date == order.term_end
    assert db.session.scalar(select(func.count()).select_from(ProcessedEvent)) == 3


def test_failed_event_before_the_success_event(card_app, web, make_checkout, card,
                                                stripe_client, stripe_emulator):
    """Out of order: the body of an event is not trusted, the intent is re-read."""
    contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    _charged_behind_the_portal(stripe_client, order, card("ok"))
    secret = stripe_emulator.webhook_secret
    late_failure = _post(web, *signed_event(secret, "payment_intent.payment_failed",
                                            order.provider_payment_id))
    assert late_failure.json["outcome"] == "renewed"  # Stripe says it succeeded
    success = _post(web, *signed_event(secret, "payment_intent.succeeded",
                                       order.provider_payment_id))
    assert success.json["outcome"] == "already_paid"
    assert _payments(order) == 1


def test_declined_event_marks_the_order_failed(card_app, web, make_checkout, card,
                                               stripe_client, stripe_emulator):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    _charged_behind_the_portal(stripe_client, order, card("declined"), declined=True)
    response = _post(web, *signed_event(stripe_emulator.webhook_secret,
                                        "payment_intent.payment_failed",
                                        order.provider_payment_id))
    assert response.json["outcome"] == "declined"
    db.session.refresh(order)
    assert order.status == "failed" and contract.end_date == old_end


def test_bad_signatures_are_rejected(card_app, web, make_checkout, card, stripe_client,
                                     stripe_emulator):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    _charged_behind_the_portal(stripe_client, order, card("ok"))
    payload, signature = signed_event("whsec_not_ours", "payment_intent.succeeded",
                                      order.provider_payment_id)
    assert _post(web, payload, signature).status_code == 400
    good_payload, good_signature = signed_event(stripe_emulator.webhook_secret,
                                                "payment_intent.succeeded",
                                                order.provider_payment_id)
    tampered = good_payload.replace(b"evt_", b"evt_x")
    for body, header in ((tampered, good_signature), (good_payload, None),
                         (good_payload, "garbage"), (b"not json", good_signature)):
        assert _post(web, body, header).status_code == 400
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "pending" and contract.end_date == old_end
    assert db.session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0


def test_a_rule_refusing_a_genuine_event_is_not_read_as_a_bad_signature(
        card_app, web, make_checkout, card, stripe_client, stripe_emulator):
    """A genuine event that a rule refuses while it is handled answers 422 (the provider
    retries it), keeps nothing, and is handled in full once the rule lets it through."""
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    _charged_behind_the_portal(stripe_client, order, card("ok"))
    payload, signature = signed_event(stripe_emulator.webhook_secret,
                                      "payment_intent.succeeded", order.provider_payment_id)

    def refused(_provider, _event):
        raise RuleError("no exchange rate for the quote date")

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(WEBHOOK_HANDLERS, "payment_intent.succeeded", refused)
        response = _post(web, payload, signature)
    assert (response.status_code, response.json) == (422, {"error": "not_processed"})
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "pending" and contract.end_date == old_end
    assert db.session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0

    retried = _post(web, payload, signature)
    assert retried.status_code == 200 and retried.json["outcome"] == "renewed"


def test_webhook_refuses_to_run_without_a_secret(card_app, web, monkeypatch):
    monkeypatch.delitem(card_app.config, "STRIPE_WEBHOOK_SECRET")
    card_app.extensions.pop("payments_provider", None)
    payload, signature = signed_event("whsec_x", "payment_intent.succeeded", "pi_x")
    assert _post(web, payload, signature).status_code == 503


def test_unknown_payment_and_other_event_types_are_acknowledged(card_app, web,
                                                               stripe_emulator, stripe_client):
    secret = stripe_emulator.webhook_secret
    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "payment_method_types": ["card"]})
    assert _post(web, *signed_event(secret, "payment_intent.succeeded", intent.id)
                 ).json["outcome"] == "unknown_payment"
    assert _post(web, *signed_event(secret, "customer.created", "cus_1")
                 ).json["outcome"] == "ignored"


def test_payment_for_a_replaced_order_is_refunded(card_app, web, make_checkout, card,
                                                  stripe_client, stripe_emulator):
    """Tab A shows the card form; tab B switches to bank transfer; tab A then pays."""
    from tests.payments.conftest import csrf_token, field_value

    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, card_order = place_card_order(web, token)
    page = web.get("/renewal").get_data(as_text=True)
    web.post("/renewal/order", data={
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        "service_level": "basic", "term_months": "12", "pay_currency": "USD",
        "payment_method": "bank_transfer", "place": "1"})
    db.session.refresh(card_order)
    assert card_order.status == "cancelled"
    _charged_behind_the_portal(stripe_client, card_order, card("ok"))
    payload, signature = signed_event(stripe_emulator.webhook_secret,
                                      "payment_intent.succeeded", card_order.provider_payment_id)
    assert _post(web, payload, signature).json["outcome"] == "refunded"
    refunds = [r for r in stripe_client.v1.refunds.list(params={"limit": 100}).data
               if r.payment_intent == card_order.provider_payment_id]
    assert len(refunds) == 1 and refunds[0].amount == 90000
    db.session.refresh(contract)
    assert contract.end_date == old_end and _payments(card_order) == 0


def test_a_signed_body_that_is_not_an_event_is_refused_with_400(card_app, web,
                                                                 stripe_emulator):
    secret = stripe_emulator.webhook_secret
    for body in (b"[]", b'[{"id": "evt_1"}]', b"42", b'"text"', b"null", b"\xff\xfe",
                 b'{"id": 5, "type": []}', b'{"id": "evt_1"}'):
        payload, signature = sign(secret, body)
        assert _post(web, payload, signature).status_code == 400, body
    assert db.session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0


def test_an_event_for_a_payment_the_provider_does_not_know_is_acknowledged(
        card_app, web, stripe_emulator):
    """Stripe retries anything but a 2xx for days: only a fault worth retrying gets one."""
    response = _post(web, *signed_event(stripe_emulator.webhook_secret,
                                        "payment_intent.succeeded", "pi_nobody_knows_this"))
    assert response.status_code == 200 and response.json["outcome"] == "unknown_payment"



def test_an_event_finds_the_attempt_whose_answer_never_came(
        card_app, web, make_checkout, card, stripe_client, stripe_emulator):
    """The provider opened the payment but its answer was lost (the attempt is unknown,
    with no provider id): the event finds the order by the payment's metadata, and the
    attempt takes the payment's id."""
    contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    (attempt,) = order.attempts
    intent_id = attempt.provider_ref
    _charged_behind_the_portal(stripe_client, order, card("ok"))
    attempt.provider_ref, attempt.state = None, AttemptState.UNKNOWN
    db.session.flush()
    response = _post(web, *signed_event(stripe_emulator.webhook_secret,
                                        "payment_intent.succeeded", intent_id))
    assert response.json["outcome"] == "renewed"
    db.session.refresh(attempt)
    assert (attempt.provider_ref, attempt.state) == (intent_id, AttemptState.SUCCEEDED)
    assert order.status == "paid" and _payments(order) == 1


def test_a_webhook_for_a_provider_nobody_registered_is_not_found(card_app, web,
                                                                 stripe_emulator):
    payload, signature = signed_event(stripe_emulator.webhook_secret,
                                      "payment_intent.succeeded", "pi_x")
    response = web.post("/nopay/webhook", data=payload, content_type="application/json",
                        headers={"Stripe-Signature": signature})
    assert response.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0
