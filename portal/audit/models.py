"""Audit log: who did what, to what, and when."""
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utc_now


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(254))  # "cli", "customer:<contact id>", staff email
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="", index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


def record(actor, action, target="", **details):
    """Add an audit entry to the current session (committed with the action it records)."""
    entry = AuditEntry(actor=actor, action=action, target=target, details=details)
    db.session.add(entry)
    return entry
