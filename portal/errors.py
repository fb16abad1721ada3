"""The portal's own errors: each says what went wrong in words a user may read."""


class PortalError(Exception):
    """Base of the portal's errors; ``str(error)`` is safe to show."""


class ConfigError(PortalError):
    """A setting that is missing or malformed; the message names the setting."""


class ProviderError(PortalError):
    """An outside provider (card payments, exchange rates) could not be reached or refused a
    request for a technical reason; asking again later may help."""
