"""Renewal notices: the 60, 30 and 15-day emails with the quote attached."""
