"""Automatic renewal with a saved card ("Automatic renewal" in renewal-rules.md)."""
