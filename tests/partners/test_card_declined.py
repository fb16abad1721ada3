"""The renewal state of a partner's contract around a card payment made through the
checkout and the local Stripe emulator: a payment under way is ``card_payment_started``;
a declined card that was not tried again holds nothing back, so the contract is ``open``
again (docs/partners.md, "Renewal state")."""
import re

from portal.extensions import db
from tests.access import bearer
from tests.payments.conftest import *  # noqa: F401,F403 - the card fixtures and helpers
from tests.selfservice.conftest import pay_by_card

API = "/api/partner/v1"


def test_a_declined_card_leaves_the_contract_open(card_app, client, web, make_checkout, card,
                                                  partners, sales):
    partner, key = partners["A"]
    contract, _link, token = make_checkout(days_to_end=20)
    contract.partner, contract.channel = partner, "partner"
    db.session.commit()

    def seen():
        """``(API renewal, staff console's state)`` of the contract."""
        renewal = client.get(f"{API}/contracts/{contract.number}",
                             headers=bearer(key)).get_json()["renewal"]
        page = sales.get(f"/staff/contracts/{contract.number}").get_data(as_text=True)
        return renewal, re.search(r'data-renewal-state="([a-z_]+)"', page).group(1)

    _response, order = place_card_order(web, token)
    renewal, console = seen()
    assert (renewal["state"], renewal["open_order"]["status"], console) == (
        "card_payment_started", "pending", "card_payment_started")

    assert pay_by_card(web, card("declined")).json["status"] == "failed"
    renewal, console = seen()
    assert renewal["open_order"]["status"] == "failed"
    assert (renewal["state"], renewal["eligible"], renewal["reason"], console) == (
        "open", True, None, "open")

    # Tried again with a good card: the payment renews the contract.
    assert pay_by_card(web, card("ok")).json["status"] == "succeeded"
    renewal, console = seen()
    assert (renewal["state"], renewal["reason"], renewal["open_order"], console) == (
        "renewed", "already_renewed", None, "renewed")
