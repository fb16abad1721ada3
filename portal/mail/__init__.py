"""Outgoing email: staged in the database, delivered by ``portal outbox drain``."""
