"""Invoice and credit note rows, and the per-party counter that numbers them."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"


class DocumentCounter(db.Model):
    """The last number given to a contracting party's invoices and credit notes (one
    sequence for both). It moves in the transaction that stores the document, so a
    rolled-back payment gives its number back and the sequence keeps no gaps."""

    __tablename__ = "document_counter"

    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class BillingDocument(db.Model):
    """An invoice (one per paid order) or a credit note (one per refund)."""

    __tablename__ = "billing_document"
    __table_args__ = (UniqueConstraint("party", "sequence"), UniqueConstraint("order_id", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # invoice | credit_note
    number: Mapped[str] = mapped_column(String(80), unique=True)
    party: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int]
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refund.id"), unique=True)
    #: A credit note's invoice.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_document.id"))
    issued_on: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    #: Everything the PDF shows, as it was when the document was issued.
    content: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    order: Mapped["Order"] = relationship()  # noqa: F821
    invoice: Mapped["BillingDocument | None"] = relationship(remote_side=[id])

    @property
    def filename(self):
        prefix = "invoice" if self.kind == INVOICE else "credit-note"
        return f"{prefix}-{self.number}.pdf"
