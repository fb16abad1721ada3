"""One row per rate-limit window: its key, the hits so far and when the window ends."""
from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class RateLimitCounter(db.Model):
    __tablename__ = "rate_limit_counter"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    #: Seconds since the epoch (UTC) when the window ends; the row is then reused or purged.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
