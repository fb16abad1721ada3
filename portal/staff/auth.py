"""Staff sessions: who is signed in, for how long, and which pages each role may see.

The session (a signed cookie) keeps the staff user's id, the user's session version, the
time of sign-in and the time of the last request. A session ends 8 hours after sign-in,
or after 30 minutes without a request, or as soon as the user is deactivated, signs out
or gets a new password (both raise the version kept in the database, so a copy of the
cookie stops working too).
"""
from datetime import timedelta
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for

from portal.extensions import db
from portal.staff.accounts import now, revoke_sessions
from portal.staff.models import StaffUser
from portal.timeutil import utc_timestamp

ABSOLUTE_LIFETIME = timedelta(hours=8)
IDLE_LIFETIME = timedelta(minutes=30)
SESSION_KEYS = ("staff_id", "staff_version", "staff_signed_in_at", "staff_seen_at")
#: The signed-in user is looked up once per request and kept with the request.
CACHE_KEY = "portal.staff_user"


def start_session(user):
    """Sign ``user`` in; the old session's contents go, so no fixation is possible."""
    session.clear()
    # A CSRF token generated earlier in this request belonged to the old session.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    stamp = utc_timestamp(now())
    session["staff_id"] = user.id
    session["staff_version"] = user.session_version
    session["staff_signed_in_at"] = stamp
    session["staff_seen_at"] = stamp


def end_session(user=None):
    """Forget the session; with ``user``, end every session of theirs (the caller commits)."""
    if user is not None:
        revoke_sessions(user)
    for key in SESSION_KEYS:
        session.pop(key, None)


def current_staff():
    """The signed-in staff user, or None when there is none or the session has expired."""
    if CACHE_KEY in request.environ:
        return request.environ[CACHE_KEY]
    request.environ[CACHE_KEY] = None
    user_id = session.get("staff_id")
    if not isinstance(user_id, int):
        return None
    at = utc_timestamp(now())
    try:
        signed_in = float(session.get("staff_signed_in_at"))
        seen = float(session.get("staff_seen_at"))
    except (TypeError, ValueError):
        end_session()
        return None
    if (at - signed_in > ABSOLUTE_LIFETIME.total_seconds()
            or at - seen > IDLE_LIFETIME.total_seconds()):
        end_session()
        return None
    user = db.session.get(StaffUser, user_id)
    if user is None or not user.active or session.get("staff_version") != user.session_version:
        end_session()
        return None
    session["staff_seen_at"] = at
    request.environ[CACHE_KEY] = user
    return user


def staff_required(role=None):
    """Signed-in staff only (sign-in page otherwise); with ``role="admin"``, 403 for others."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_staff()
            if user is None:
                return redirect(url_for("staff.sign_in", next=request.path))
            if role is not None and user.role != role:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
