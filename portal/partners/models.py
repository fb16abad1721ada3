"""API keys of partners. A key is shown once; only its SHA-256 hash is stored."""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now


class PartnerApiKey(db.Model):
    __tablename__ = "partner_api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The key's first characters, enough to tell keys apart, never enough to use one.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]

    partner: Mapped["Partner"] = relationship()  # noqa: F821
