"""Invoices for paid orders and credit notes for their refunds: numbered without gaps per
contracting party, kept as an unchangeable snapshot, rendered as PDF on demand."""
