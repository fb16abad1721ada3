"""Market data staff can edit without a release: online-renewal launch dates per country."""
from datetime import date

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class MarketLaunch(db.Model):
    __tablename__ = "market_launch"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    launch_date: Mapped[date]
    market_group: Mapped[str] = mapped_column(String(64), default="")
