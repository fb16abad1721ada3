"""Personal renewal links: the only way into a customer's checkout."""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now


class RenewalLink(db.Model):
    __tablename__ = "renewal_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    #: A short public reference for help requests (never enough to open the link).
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    purpose: Mapped[str] = mapped_column(String(32), default="manual")  # notice, resend, staff
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]
    last_opened_at: Mapped[datetime | None]

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    contact: Mapped["Contact"] = relationship()  # noqa: F821
