"""The portal's own errors: each says what went wrong in words a user may read."""


class PortalError(Exception):
    """Base of the portal's errors; ``str(error)`` is safe to show."""


class ConfigError(PortalError):
    """A setting that is missing or malformed; the message names the setting."""


class ProviderError(PortalError):
    """An outside provider (card payments, exchange rates) could not be reached or refused a
    request for a technical reason; asking again later may help."""


#: The message of an API error answered by the framework rather than by a view (an unknown
#: path, a method the path does not take, a body too large, a fault), per HTTP status.
API_ERROR_MESSAGES = {
    400: "the request is malformed",
    401: "a valid API key is required: Authorization: Bearer <key>",
    403: "this request is not allowed",
    404: "no such resource",
    405: "this method is not allowed here; the Allow header lists the ones that are",
    409: "the request conflicts with the current state of the resource",
    413: "the request body is too large",
    415: "the request body must be JSON (Content-Type: application/json)",
    429: "too many requests; try again later",
    500: "something went wrong on our side; try again later",
}


def api_error_body(status, code, message=None):
    """The JSON body of every API error: ``error`` (a code), ``status`` and ``message``
    (docs/interfaces.md, "Partner API")."""
    return {"error": code, "status": status,
            "message": message or API_ERROR_MESSAGES.get(status, API_ERROR_MESSAGES[500])}
