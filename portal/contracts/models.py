"""Accounts, contacts, partners, contracts and their lines ("Words" in docs/rules.md)."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now


class Partner(db.Model):
    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")


class Account(db.Model):
    """The customer company. Identified on import by (name, country)."""

    __tablename__ = "account"
    __table_args__ = (UniqueConstraint("name", "country"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    region: Mapped[str | None] = mapped_column(String(6))  # ISO 3166-2, e.g. CA-QC

    contacts: Mapped[list["Contact"]] = relationship(
        back_populates="account", order_by="Contact.id", cascade="all, delete-orphan"
    )


class Contact(db.Model):
    __tablename__ = "contact"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    primary: Mapped[bool] = mapped_column(default=False)
    renewals: Mapped[bool] = mapped_column(default=True)  # receives renewal notices

    account: Mapped[Account] = relationship(back_populates="contacts")

    @property
    def is_renewal_contact(self):
        """Receives the account's renewal notices (the primary contact always does) and may
        renew any of its contracts."""
        return self.renewals or self.primary


class Contract(db.Model):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint("channel in ('direct', 'partner', 'oem')", name="channel"),
        CheckConstraint("status in ('active', 'cancelled')", name="status"),
        CheckConstraint("end_date >= start_date", name="dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    price_list_id: Mapped[int] = mapped_column(ForeignKey("price_list.id"))
    service_level: Mapped[str] = mapped_column(String(64))
    term_months: Mapped[int]
    start_date: Mapped[date]
    end_date: Mapped[date] = mapped_column(index=True)  # inclusive
    status: Mapped[str] = mapped_column(String(16), default="active")
    updated_at: Mapped[datetime] = mapped_column(
        default=utc_now, onupdate=utc_now
    )

    account: Mapped[Account] = relationship()
    partner: Mapped[Partner | None] = relationship()
    price_list: Mapped["PriceList"] = relationship()  # noqa: F821
    lines: Mapped[list["ContractLine"]] = relationship(
        back_populates="contract", order_by="ContractLine.id", cascade="all, delete-orphan"
    )

    @property
    def currency(self):
        return self.price_list.currency

    @property
    def renewal_contacts(self):
        """Contacts marked for renewals, the primary one always among them."""
        return [c for c in self.account.contacts if c.is_renewal_contact]

    @property
    def primary_contact(self):
        """The primary renewal contact, else the first one, else None."""
        contacts = self.renewal_contacts
        return next((c for c in contacts if c.primary), contacts[0] if contacts else None)


class ContractLine(db.Model):
    __tablename__ = "contract_line"
    __table_args__ = (
        UniqueConstraint("contract_id", "product_code"),
        CheckConstraint("quantity > 0", name="quantity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"))
    quantity: Mapped[int]

    contract: Mapped[Contract] = relationship(back_populates="lines")
    product: Mapped["Product"] = relationship()  # noqa: F821
