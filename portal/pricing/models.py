"""Products and regional price lists ("price list" under "Words" in docs/rules.md)."""
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db


class Product(db.Model):
    __tablename__ = "product"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class PriceList(db.Model):
    __tablename__ = "price_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    currency: Mapped[str] = mapped_column(String(3))

    entries: Mapped[list["PriceEntry"]] = relationship(
        back_populates="price_list", cascade="all, delete-orphan"
    )

    def prices(self):
        """``{(product, level, term): unit price}`` for the rules."""
        return {
            (e.product_code, e.service_level, e.term_months): e.unit_price for e in self.entries
        }


class PriceEntry(db.Model):
    __tablename__ = "price_entry"
    __table_args__ = (
        UniqueConstraint("price_list_id", "product_code", "service_level", "term_months"),
        CheckConstraint("unit_price >= 0", name="unit_price"),
        CheckConstraint("term_months > 0", name="term_months"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(ForeignKey("price_list.id"), index=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"))
    service_level: Mapped[str] = mapped_column(String(64))
    term_months: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 4))

    price_list: Mapped[PriceList] = relationship(back_populates="entries")
