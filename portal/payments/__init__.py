"""Card payments: a provider interface and its Stripe implementation."""
