"""The customer's pages after a renewal, from the renewal link's session: a refund and
turning automatic renewal off. Every change is a POST form with a CSRF token."""
