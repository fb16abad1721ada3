"""Issuing, checking and revoking partner API keys.

A key is ``pk_`` followed by 256 random bits (URL-safe base64). It is printed once; the
database keeps its SHA-256 hash and its first 11 characters as a display prefix.
"""
import hashlib
import secrets

from sqlalchemy import select

from portal.contracts.models import Partner
from portal.extensions import db
from portal.partners.models import PartnerApiKey
from portal.timeutil import utc_now

KEY_PREFIX = "pk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
MAX_KEY_LENGTH = 128


class PartnerKeyError(ValueError):
    """A key operation that cannot be done; the message says why."""


def hash_key(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_partner(code, name=None):
    """The partner with ``code``, created when missing; ``name`` updates it when given."""
    code = (code or "").strip()
    if not code or len(code) > 64 or any(c.isspace() for c in code):
        raise PartnerKeyError(f"{code!r} is not a partner code")
    partner = db.session.scalar(select(Partner).where(Partner.code == code))
    if partner is None:
        partner = Partner(code=code, name=name or code)
        db.session.add(partner)
    elif name:
        partner.name = name
    db.session.flush()
    return partner


def issue_key(partner):
    """Create a key for ``partner``; returns ``(row, key)``. The key is not kept."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return store_key(partner, key), key


def store_key(partner, key):
    """Keep ``key`` (its hash and display prefix) as an API key of ``partner``."""
    row = PartnerApiKey(partner_id=partner.id, key_hash=hash_key(key), prefix=key[:PREFIX_LENGTH])
    db.session.add(row)
    db.session.flush()
    return row


def key_revoked(key):
    """Whether ``key`` was issued and has been revoked."""
    return db.session.scalar(select(PartnerApiKey.id).where(
        PartnerApiKey.key_hash == hash_key(key), PartnerApiKey.revoked_at.is_not(None))) is not None


def partner_for_key(key):
    """The partner owning the unrevoked key ``key``, or None."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    row = db.session.scalar(select(PartnerApiKey).where(
        PartnerApiKey.key_hash == hash_key(key), PartnerApiKey.revoked_at.is_(None)))
    return row.partner if row is not None else None


def revoke_key(prefix):
    row = db.session.scalar(select(PartnerApiKey).where(PartnerApiKey.prefix == prefix))
    if row is None:
        raise PartnerKeyError(f"no API key with prefix {prefix!r}")
    if row.revoked_at is not None:
        raise PartnerKeyError(f"the API key {prefix} was already revoked")
    row.revoked_at = utc_now()
    return row
