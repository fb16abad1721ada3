"""The sales staff console: sign-in, contract search and the renewals desk's actions."""
