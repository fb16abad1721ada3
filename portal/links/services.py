"""Issuing, resolving and revoking renewal links.

A token carries 256 random bits and is stored only as its SHA-256 hash, bound to one
contract and one contact. It stays valid until the contract's reinstatement window closes
(``end date + REINSTATEMENT_MAX_LAPSE_DAYS``), judged on the contract as it is now, or
until it is revoked.
"""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.links.models import RenewalLink
from portal.timeutil import utc_now

TOKEN_BYTES = 32
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _reference():
    return "R-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def issue_link(contract, contact, purpose="manual", token=None):
    """Create a link; returns ``(link, token)``. The token is shown once and not kept.

    ``token`` is for reproducible demo links only; every other link gets a random one.
    """
    link, token = new_link(contract, contact, purpose, token)
    db.session.add(link)
    db.session.flush()
    return link, token


def new_link(contract, contact, purpose="manual", token=None):
    """``(link, token)`` of a link not yet stored: the caller adds it when it writes."""
    if contact.account_id != contract.account_id:
        raise ValueError("the contact does not belong to the contract's account")
    token = token or secrets.token_urlsafe(TOKEN_BYTES)
    return RenewalLink(token_hash=hash_token(token), contract_id=contract.id,
                       contact_id=contact.id, reference=_reference(), purpose=purpose), token


def link_url(token):
    return f"{current_app.config['PORTAL_BASE_URL'].rstrip('/')}/r/{token}"


def window_closes(contract):
    return contract.end_date + timedelta(days=current_app.config["REINSTATEMENT_MAX_LAPSE_DAYS"])


def is_usable(link, today):
    return link.revoked_at is None and today <= window_closes(link.contract)


def find_link(token):
    """The link for ``token`` whatever its state, or None for an unknown token."""
    if not token or len(token) > 128:
        return None
    return db.session.scalar(select(RenewalLink).where(RenewalLink.token_hash == hash_token(token)))


def revoke(link):
    if link.revoked_at is None:
        link.revoked_at = utc_now()
