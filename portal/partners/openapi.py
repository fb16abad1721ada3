"""The OpenAPI 3 document of the partner API, written by hand so it says exactly what the
API promises (docs/interfaces.md, "Partner API"); tests fuzz the API against it."""
from portal.orders.models import OPEN_STATUSES
from portal.orders.services import RENEWAL_STATES
from portal.partners.services import RATE_UNAVAILABLE, STATUSES
from portal.renewals.rules import REASONS


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document():
    contract_ref = {"$ref": "#/components/schemas/Contract"}
    unauthorized = _error("Missing, unknown or revoked API key.")
    too_many = _error("Too many requests with this key; try again later.")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Renewal Portal partner API",
            "version": "1.0.0",
            "description": (
                "Status and renewal state of the contracts a partner resells. Every request "
                "needs `Authorization: Bearer <key>`; keys are issued with "
                "`portal partner add CODE`. A contract of another partner answers 404. "
                "Unknown or repeated query parameters are refused with 400."
            ),
        },
        "servers": [{"url": "/api/partner/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/contracts": {
                "get": {
                    "operationId": "listContracts",
                    "summary": "The partner's contracts, by number, one page at a time.",
                    "parameters": [
                        {"name": "status", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": list(STATUSES)}},
                        {"name": "page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 999999999,
                                    "default": 1}},
                        {"name": "per_page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                    "default": 50}},
                    ],
                    "responses": {
                        "200": {"description": "One page of contracts.", "content": {
                            "application/json": {"schema": {
                                "$ref": "#/components/schemas/ContractPage"}}}},
                        "400": _error("A query parameter has a value the API does not accept."),
                        "401": unauthorized,
                        "429": too_many,
                    },
                },
            },
            "/contracts/{number}": {
                "get": {
                    "operationId": "getContract",
                    "summary": "One contract of the partner.",
                    "parameters": [{"name": "number", "in": "path", "required": True,
                                    "schema": {"type": "string"}, "example": "SNS-004711"}],
                    "responses": {
                        "200": {"description": "The contract.", "content": {
                            "application/json": {"schema": contract_ref}}},
                        "400": _error("The request has a query parameter."),
                        "401": unauthorized,
                        "404": _error("No contract with this number belongs to the partner."),
                        "429": too_many,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {
                        "error": {"type": "string"},
                        "status": {"type": "integer"},
                        "message": {"type": "string"},
                    },
                },
                "ContractPage": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["contracts", "page", "per_page", "total"],
                    "properties": {
                        "contracts": {"type": "array", "items": contract_ref},
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                        "total": {"type": "integer", "minimum": 0},
                    },
                },
                "Contract": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["number", "account", "status", "service_level", "term_months",
                                 "end_date", "renewal"],
                    "properties": {
                        "number": {"type": "string"},
                        "account": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "country"],
                            "properties": {
                                "name": {"type": "string"},
                                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                            },
                        },
                        "status": {"type": "string", "enum": list(STATUSES),
                                   "description": "expiring: 0 to 60 days before the end "
                                                  "date; expired: after it."},
                        "service_level": {"type": "string"},
                        "term_months": {"type": "integer", "minimum": 1},
                        "end_date": {"type": "string", "format": "date",
                                     "description": "Inclusive: covered through this day."},
                        "auto_renew": {"type": "boolean",
                                       "description": "The customer renews automatically "
                                                      "with a saved card."},
                        "renewal": {"$ref": "#/components/schemas/Renewal"},
                    },
                },
                "Renewal": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["eligible", "reason", "state", "open_order"],
                    "properties": {
                        "eligible": {"type": "boolean",
                                     "description": "Can the customer renew online today?"},
                        "reason": {
                            "type": "string", "nullable": True,
                            "enum": [*REASONS, RATE_UNAVAILABLE, None],
                            "description": (
                                "Why not, as in the eligibility table of the renewal rules; "
                                f"`{RATE_UNAVAILABLE}` when no exchange rate lets the "
                                "portal price the renewal today. Null when eligible."),
                        },
                        "state": {
                            "type": "string", "enum": list(RENEWAL_STATES),
                            "description": (
                                "What the next term waits for, in the words the renewals "
                                "desk's console uses: `open` (can be renewed online), "
                                "`card_payment_started`, `awaiting_payment` (an offline "
                                "order placed, not paid yet), `renewed` (paid), "
                                "`not_online` (see `reason`)."),
                        },
                        # OpenAPI 3.0 cannot make a referenced schema nullable ("allOf"
                        # applies the referenced object type to null too): the same
                        # schema, inline, with "nullable".
                        "open_order": _open_order(nullable=True),
                    },
                },
                "OpenOrder": _open_order(nullable=False),
            },
        },
    }


def _open_order(nullable):
    """The order awaiting payment or being paid; null when there is none."""
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "method", "amount_due", "currency", "placed_at"],
        "properties": {
            "status": {"type": "string", "enum": list(OPEN_STATUSES)},
            "method": {"type": "string"},
            "amount_due": {"type": "string", "pattern": r"^\d+(\.\d+)?$",
                           "description": "Exactly the currency's minor-unit "
                                          "digits, e.g. 2400.00 or 98000."},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "placed_at": {"type": "string", "format": "date-time"},
        },
    }
    if nullable:
        schema["nullable"] = True
    return schema
