"""Automatic renewal with a saved card ("Automatic renewal" in docs/rules.md)."""
