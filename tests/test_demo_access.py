"""``portal up`` prints a staff sign-in and a partner API key that work, the same ones on
every start, and keeps only their hashes."""
from sqlalchemy import func, select

from portal.extensions import db
from portal.partners.keys import partner_for_key, revoke_key
from portal.partners.models import PartnerApiKey
from portal.demo.up import demo_access
from portal.staff.accounts import authenticate


def test_demo_access_signs_in_and_is_stable(app):
    email, password, partner, key = demo_access()
    assert authenticate(email, password).role == "admin"
    assert partner_for_key(key).code == partner
    assert demo_access() == (email, password, partner, key)  # a second start: the same
    assert db.session.scalar(select(func.count()).select_from(PartnerApiKey)) == 1
    stored = db.session.scalar(select(PartnerApiKey))
    assert key not in (stored.key_hash, stored.prefix)


def test_a_revoked_demo_key_is_replaced(app):
    _email, _password, _partner, key = demo_access()
    revoke_key(key[:11])
    db.session.commit()
    *_rest, new_key = demo_access()
    assert new_key != key and partner_for_key(new_key) is not None
