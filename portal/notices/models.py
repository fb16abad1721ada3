"""One row per notice sent: a (contract, end date, milestone) is noticed at most once."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utc_now


class NoticeRecord(db.Model):
    __tablename__ = "notice_record"
    __table_args__ = (
        UniqueConstraint("contract_id", "end_date", "milestone"),
        # 60, 30, 15 days before the end date; -1 and -30: the lapsed reminders after it
        CheckConstraint("milestone in (60, 30, 15, -1, -30)", name="milestone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    end_date: Mapped[date]
    milestone: Mapped[int]
    run_date: Mapped[date]
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quote.id"))
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
