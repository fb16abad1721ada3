"""Staff accounts: adding users, checking and changing passwords.

No request or session here; ``portal.staff.auth`` ties these to the web session.
"""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select

from portal.extensions import db
from portal.mail.addresses import normalized_address
from portal.staff.models import ROLES, StaffUser
from portal.timeutil import utc_now as now  # the clock of sign-ins and lockouts

#: Argon2id cost: the library's defaults (RFC 9106 low-memory profile: 3 passes, 64 MiB,
#: 4 lanes), which settings may raise (or lower, for tests).
ARGON2_DEFAULTS = {"ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST": 65536, "ARGON2_PARALLELISM": 4}
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def hasher():
    config = {name: int(current_app.config.get(name, default))
              for name, default in ARGON2_DEFAULTS.items()}
    return PasswordHasher(time_cost=config["ARGON2_TIME_COST"],
                          memory_cost=config["ARGON2_MEMORY_COST"],
                          parallelism=config["ARGON2_PARALLELISM"])


def _dummy_hash():
    """Verified against when the email is unknown or locked, so every case costs the same."""
    return hasher().hash("not a real password, only for timing")


class StaffError(ValueError):
    """A staff account change that cannot be made; the message says why."""


def normalise_email(email):
    return (email or "").strip().lower()


def find_staff(email):
    email = normalise_email(email)
    if len(email) > 254 or "\x00" in email:
        return None
    return db.session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email)
    )


def check_password_rules(password):
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError("the password is too long")


def add_staff(email, password, role="sales"):
    """Create a staff user; refuses a duplicate email, an unknown role or a weak password."""
    email = normalise_email(email)
    try:
        normalized_address(email)
    except ValueError:
        raise StaffError(f"{email!r} is not an email address") from None
    if role not in ROLES:
        raise StaffError(f"unknown role {role!r} (sales or admin)")
    if find_staff(email) is not None:
        raise StaffError(f"a staff user {email} already exists")
    check_password_rules(password)
    user = StaffUser(email=email, role=role, password_hash=hasher().hash(password),
                     failed_attempts=0, active=True)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email, password):
    """The active user whose password this is, else None. The caller commits.

    A wrong password does not lock the account (anyone could lock the desk out by
    guessing): repeated failures are throttled per address and client by the caller
    (``portal.staff.throttle``). ``failed_attempts`` counts failures since the last
    successful sign-in, for the record."""
    user = find_staff(email)
    if user is None or not user.active:
        _verify(_dummy_hash(), password)
        return None
    if not _verify(user.password_hash, password):
        user.failed_attempts = (user.failed_attempts or 0) + 1
        return None
    user.failed_attempts = 0
    user.locked_until = None
    user.last_sign_in_at = now()
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)
    return user


def set_password(user, password):
    """Give ``user`` a new password; every session of theirs ends. The caller commits."""
    check_password_rules(password)
    user.password_hash = hasher().hash(password)
    revoke_sessions(user)


def revoke_sessions(user):
    """End every session of ``user``: cookies carry the version they were issued with."""
    user.session_version = (user.session_version or 0) + 1


def _verify(password_hash, password):
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
