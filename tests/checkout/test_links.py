"""Opening renewal links: the token moves into the session and nothing else changes."""
import email
import email.policy
import re
from urllib.parse import unquote

from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.links.models import RenewalLink
from portal.links.services import revoke
from portal.mail.models import OutboxMessage
from portal.orders.models import Order
from portal.renewals.models import Quote
from tests.checkout.conftest import csrf_token


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_token_redirects_to_a_url_without_it_and_sets_the_session(web, make_checkout):
    contract, link, token = make_checkout()
    counts = [_count(m) for m in (Order, Quote, AuditEntry, RenewalLink)]
    response = web.get(f"/r/{token}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/renewal")
    assert token not in response.headers["Location"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-portal=") and "Secure" in cookie and "HttpOnly" in cookie
    assert token not in cookie
    with web.session_transaction() as session:
        assert session["link_id"] == link.id
    assert [_count(m) for m in (Order, Quote, AuditEntry, RenewalLink)] == counts
    page = web.get("/renewal")
    assert page.status_code == 200
    assert contract.number in page.get_data(as_text=True)


def test_the_link_contact_language_chooses_the_page_language(web, make_checkout):
    _, _, token = make_checkout(language="de")
    web.get(f"/r/{token}")
    page = web.get("/renewal").get_data(as_text=True)
    assert '<html lang="de"' in page
    assert '<html lang="fr"' in web.get("/renewal?lang=fr").get_data(as_text=True)


def test_no_link_in_the_session_gets_a_friendly_page(web, make_checkout):
    response = web.get("/renewal")
    assert response.status_code == 403
    assert "open the link in your renewal email" in response.get_data(as_text=True)


def test_unknown_and_revoked_tokens_offer_a_fresh_link(web, make_checkout, today):
    _, link, token = make_checkout()
    assert web.get("/r/a%2F..%2F..").status_code == 404  # not a token: the plain 404 page
    for bad in ("not-a-token", "x" * 500, "%00", "%C3%BC" * 40, "%FF%FE"):
        response = web.get(f"/r/{bad}")
        assert response.status_code == 404
        assert "Send me a new link" in response.get_data(as_text=True)
    revoke(link)
    response = web.get(f"/r/{token}")
    assert response.status_code == 404
    with web.session_transaction() as session:
        assert "link_id" not in session
    assert web.get("/renewal").status_code == 403


def test_a_link_past_the_reinstatement_window_says_why_and_offers_a_quote(web, make_checkout):
    contract, link, token = make_checkout(days_to_end=-400)
    response = web.get(f"/r/{token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-reason="lapsed_too_long"' in page
    assert "This contract can no longer be renewed online" in page
    request_quote = re.search(r'href="(mailto:[^"]+)" data-quote-request', page).group(1)
    assert contract.number in unquote(request_quote) and link.reference in unquote(request_quote)
    with web.session_transaction() as session:
        assert "link_id" not in session  # no checkout behind it
    assert web.get("/renewal").status_code == 403
    revoke(link)
    assert web.get(f"/r/{token}").status_code == 404  # a revoked link says nothing more


def _resend(web, token, email):
    page = web.get(f"/r/{token}").get_data(as_text=True)
    return web.post("/renewal/new-link", data={"csrf_token": csrf_token(page), "email": email})


def _staged(key_prefix):
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.key.like(f"{key_prefix}%"))
    ).all()


def test_resend_issues_a_fresh_link_only_to_a_contact_on_record(web, make_checkout):
    contract, link, token = make_checkout()
    revoke(link)
    stranger = _resend(web, token, "someone@else.example")
    before = _count(RenewalLink)
    assert stranger.status_code == 200
    assert _count(RenewalLink) == before
    known = _resend(web, token, contract.account.contacts[0].email.upper())
    assert known.status_code == 200
    # The same answer either way: nobody learns which addresses are on record.
    assert known.get_data(as_text=True) == stranger.get_data(as_text=True)
    fresh = db.session.scalars(select(RenewalLink).where(RenewalLink.purpose == "resend")).all()
    assert len(fresh) == 1 and fresh[0].contract_id == contract.id
    staged = _staged("fresh-link:")
    assert [message.to for message in staged] == [contract.account.contacts[0].email]
    text = email.message_from_bytes(staged[0].mime, policy=email.policy.default)
    assert "/r/" in text.get_body(("plain",)).get_content()


def test_resend_with_an_unknown_token_or_bad_address_changes_nothing(web, make_checkout):
    make_checkout()
    before = _count(RenewalLink)
    response = _resend(web, "unknown-token", "buyer@example.com")
    assert response.status_code == 200
    assert _count(RenewalLink) == before
    invalid = _resend(web, "unknown-token", "not an address" * 100)
    assert invalid.status_code == 400
    # Too long and not an address: one fault, said once.
    assert invalid.get_data(as_text=True).count("Please enter a valid email address.") == 1
    assert _count(RenewalLink) == before


def test_resend_needs_a_csrf_token(web, make_checkout):
    _, link, token = make_checkout()
    revoke(link)
    web.get(f"/r/{token}")
    response = web.post("/renewal/new-link", data={"email": "buyer@example.com"})
    assert response.status_code == 400
    assert "session has expired" in response.get_data(as_text=True)


def test_opening_links_is_rate_limited(web, make_checkout):
    statuses = [web.get("/r/guess-{0}".format(n)).status_code for n in range(31)]
    assert statuses[:30] == [404] * 30
    assert statuses[30] == 429


def test_root_says_how_to_get_in(web):
    response = web.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "data-home" in page
    assert "Open the renewal link in your renewal email" in page
    assert "Something went wrong" not in page
    assert 'lang="de"' in web.get("/?lang=de").get_data(as_text=True)


def test_lang_on_a_renewal_link_survives_the_redirect_and_the_visit_is_noted(
        web, make_checkout):
    _contract, link, token = make_checkout()
    assert db.session.get(RenewalLink, link.id).last_opened_at is None
    opened = web.get(f"/r/{token}?lang=de")
    assert opened.status_code == 303
    page = web.get("/renewal").get_data(as_text=True)
    assert '<html lang="de"' in page
    db.session.expire_all()
    assert db.session.get(RenewalLink, link.id).last_opened_at is not None
    mailto = unquote(page.split('data-help-link')[0].rsplit('href="', 1)[1])
    assert f"Vertrag {_contract.number}" in mailto and "Contract:" not in mailto


def test_an_unknown_or_stale_link_leaves_the_renewal_in_progress(web, make_checkout):
    """A customer clicks an old email's link while renewing from a newer one: they learn
    that link no longer works, in their language, and their renewal is still open."""
    _contract, _link, token = make_checkout(language="de")
    _old_contract, old_link, old_token = make_checkout(language="de")
    revoke(old_link)
    db.session.commit()
    assert web.get(f"/r/{token}").status_code == 303
    assert web.get("/renewal").status_code == 200
    for stale in ("garbage", old_token):
        answer = web.get(f"/r/{stale}")
        assert answer.status_code == 404
        assert 'lang="de"' in answer.get_data(as_text=True)
        assert web.get("/renewal").status_code == 200  # still in the renewal
