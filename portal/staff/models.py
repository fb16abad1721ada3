"""Staff users of the console. Passwords are stored only as Argon2id hashes."""
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utc_now

ROLES = ("sales", "admin")


class StaffUser(db.Model):
    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint("role in ('sales', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="sales")
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_sign_in_at: Mapped[datetime | None]
    #: Raised by signing out and by a new password: every session cookie that carries an
    #: older number is signed out, wherever it is kept.
    session_version: Mapped[int] = mapped_column(default=0)

    @property
    def is_admin(self):
        return self.role == "admin"
