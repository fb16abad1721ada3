"""The customer checkout: renewal links, the quote page, orders and offline payments."""
