"""Exchange-rate history: units of a currency per 1 EUR, by date (docs/rules.md,
"Exchange rates")."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utc_now


class ExchangeRate(db.Model):
    __tablename__ = "exchange_rate"
    __table_args__ = (UniqueConstraint("currency", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    as_of: Mapped[date]
    per_eur: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    source: Mapped[str] = mapped_column(String(32), default="import")
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)
