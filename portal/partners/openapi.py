"""The OpenAPI 3 document of the partner API, written by hand so it says exactly what the
API promises (docs/interfaces.md, "Partner API"); tests fuzz the API against it."""
from portal.money import CURRENCIES
from portal.orders.models import OPEN_STATUSES
from portal.partners.models import EVENT_TYPES
from portal.orders.services import RENEWAL_STATES
from portal.partners.services import RATE_UNAVAILABLE, STATUSES
from portal.partners.webhooks import MAX_URL_LENGTH, SIGNATURE_HEADER, URL_PATTERN
from portal.renewals.rules import REASONS

MAX_ID = 2**31 - 1
AMOUNT = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}
DATE = {"type": "string", "format": "date"}
TIMESTAMP = {"type": "string", "format": "date-time"}


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document():
    contract_ref = {"$ref": "#/components/schemas/Contract"}
    unauthorized = _error("Missing, unknown or revoked API key.")
    too_many = _error("Too many requests with this key; try again later.")
    number = {"name": "number", "in": "path", "required": True,
              "schema": {"type": "string"}, "example": "SNS-004711"}
    no_contract = _error("No contract with this number belongs to the partner.")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Renewal Portal partner API",
            "version": "1.0.0",
            "description": (
                "Status, quotes and renewal links of the contracts a partner resells, and "
                "the events that happen to them, as signed webhooks and as a feed. Every "
                "request needs `Authorization: Bearer <key>`; keys are issued with "
                "`portal partner add CODE`. A contract of another partner answers 404. "
                "Unknown or repeated query parameters are refused with 400. "
                f"Webhook requests carry `{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>`, "
                "the HMAC-SHA256 of `<t>.<body>` keyed with the endpoint's secret; see the "
                "callback of `POST /webhooks`."
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
            "/contracts/{number}/quote": {
                "get": {
                    "operationId": "getQuote",
                    "summary": "Today's quote, the same JSON as `portal quote --json`.",
                    "parameters": [number, {
                        "name": "pay_currency", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": list(CURRENCIES)},
                        "description": "Describe paying the contract's own level and term "
                                       "in this currency, if the checkout offers it today; "
                                       "one it does not offer (a stale rate, or LVL and "
                                       "LTL, which are never paid in) is a 409."}],
                    "responses": {
                        "200": _json("The quote.", _ref("Quote")),
                        "400": _error("A query parameter the API does not accept."),
                        "401": unauthorized,
                        "404": no_contract,
                        "409": _error("The contract cannot be priced today "
                                      "(`not_quotable`), or the currency is not offered for "
                                      "it today (`currency_not_offered`)."),
                        "429": too_many,
                    },
                },
            },
            "/contracts/{number}/renewal-link": {
                "post": {
                    "operationId": "emailRenewalLink",
                    "summary": "Email a renewal link to the customer's contacts on record.",
                    "description": "The link goes to the customer only and is never part "
                                   "of the answer. Once per contract per day.",
                    "parameters": [number],
                    "responses": {
                        "202": _json("The email is on its way.", _ref("LinkSent")),
                        "400": _error("The request has a query parameter."),
                        "401": unauthorized,
                        "404": no_contract,
                        "409": _error("The contract cannot be renewed online "
                                      "(`not_renewable`) or has no contact (`no_contacts`)."),
                        "429": _error("Sent for this contract today already, or too many "
                                      "requests with this key."),
                    },
                },
            },
            "/webhooks": {
                "get": {
                    "operationId": "listWebhooks",
                    "summary": "The partner's webhook endpoints (without their secrets).",
                    "responses": {
                        "200": _json("The endpoints.", {
                            "type": "object", "additionalProperties": False,
                            "required": ["webhooks"],
                            "properties": {"webhooks": {"type": "array",
                                                        "items": _ref("Webhook")}}}),
                        "400": _error("The request has a query parameter."),
                        "401": unauthorized,
                        "429": too_many,
                    },
                },
                "post": {
                    "operationId": "addWebhook",
                    "summary": "Register an endpoint; the answer shows its signing secret, "
                               "once.",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "required": ["url"],
                                   "properties": {"url": {"type": "string",
                                                          "maxLength": MAX_URL_LENGTH,
                                                          "pattern": URL_PATTERN}}}}}},
                    "responses": {
                        "201": _json("The endpoint and its secret.", _ref("NewWebhook")),
                        "400": _error("The body is not `{\"url\": ...}` with an acceptable "
                                      "URL."),
                        "401": unauthorized,
                        "409": _error("The URL is registered already, or the partner has "
                                      "as many endpoints as it may have."),
                        "413": _error("The body is larger than the portal takes."),
                        "415": _error("The body is sent with a Content-Type other than "
                                      "`application/json`."),
                        "429": too_many,
                    },
                    "callbacks": {"event": {"{$request.body#/url}": {"post": {
                        "summary": "An event, POSTed to the endpoint.",
                        "parameters": [{
                            "name": SIGNATURE_HEADER, "in": "header", "required": True,
                            "schema": {"type": "string",
                                       "pattern": "^t=[0-9]+,v1=[0-9a-f]{64}$"},
                            "description": "`v1` is the hexadecimal HMAC-SHA256, keyed with "
                                           "the endpoint's secret, of `<t>.<body>`."}],
                        "requestBody": {"required": True, "content": {
                            "application/json": {"schema": _ref("Event")}}},
                        "responses": {"2XX": {"description": "Received. Any other answer, "
                                                             "or none, is retried with "
                                                             "backoff for up to 3 days."}},
                    }}}},
                },
            },
            "/webhooks/{id}": {
                "delete": {
                    "operationId": "removeWebhook",
                    "summary": "Remove an endpoint; nothing more is sent to it.",
                    "parameters": [{"name": "id", "in": "path", "required": True,
                                    "schema": {"type": "integer", "minimum": 1,
                                               "maximum": MAX_ID}}],
                    "responses": {
                        "204": {"description": "Removed."},
                        "400": _error("The request has a query parameter."),
                        "401": unauthorized,
                        "404": _error("The partner has no endpoint with this id."),
                        "429": too_many,
                    },
                },
            },
            "/events": {
                "get": {
                    "operationId": "listEvents",
                    "summary": "The partner's events after a given id, oldest first.",
                    "parameters": [
                        {"name": "after", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID,
                                    "default": 0}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                    "default": 100}},
                    ],
                    "responses": {
                        "200": _json("One page of events; ask again with the last id while "
                                     "`has_more`.", _ref("EventPage")),
                        "400": _error("A query parameter the API does not accept."),
                        "401": unauthorized,
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
                    "required": ["error", "status", "message"],
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
                                "desk's console uses: `open` (can be renewed online; "
                                "also after a declined card not tried again, whose order "
                                "shows as `failed`), `card_payment_started` (a card "
                                "payment under way), `awaiting_payment` (an offline "
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
                **quote_schemas(),
                **webhook_schemas(),
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
            "combined_order": {
                "type": "object", "nullable": True, "additionalProperties": False,
                "description": "The order pays for several contracts of the account with "
                               "one payment: its reference (to pay or quote), every "
                               "contract in it and the one amount due. Null otherwise; "
                               "amount_due above is this contract's part.",
                "required": ["reference", "contracts", "amount_due"],
                "properties": {
                    "reference": {"type": "string"},
                    "contracts": {"type": "array", "items": {"type": "string"}},
                    "amount_due": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
                },
            },
        },
    }
    if nullable:
        schema["nullable"] = True
    return schema


def quote_schemas():
    """The quote JSON of docs/interfaces.md, "Quote JSON"."""
    option = {
        "type": "object", "additionalProperties": False,
        "required": ["service_level", "term_months", "term_start", "term_end", "lapsed_days",
                     "term_fee", "backdated_fee", "reinstatement_fee", "total",
                     "usd_equivalent", "within_cap"],
        "properties": {
            "service_level": {"type": "string"}, "term_months": {"type": "integer"},
            "term_start": DATE, "term_end": DATE,
            "lapsed_days": {"type": "integer", "minimum": 0},
            "term_fee": AMOUNT, "backdated_fee": AMOUNT, "reinstatement_fee": AMOUNT,
            "total": AMOUNT, "usd_equivalent": AMOUNT, "within_cap": {"type": "boolean"},
        },
    }
    payment = {
        "type": "object", "additionalProperties": False, "nullable": True,
        "required": ["currency", "service_level", "term_months", "rate", "converted",
                     "fx_fee", "amount_due"],
        "properties": {
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "service_level": {"type": "string"}, "term_months": {"type": "integer"},
            "rate": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            "converted": AMOUNT, "fx_fee": AMOUNT, "amount_due": AMOUNT,
        },
    }
    return {
        "Quote": {
            "type": "object", "additionalProperties": False,
            "required": ["contract", "quote_date", "currency", "eligible", "reason",
                         "options", "payment"],
            "properties": {
                "contract": {"type": "string"}, "quote_date": DATE,
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "eligible": {"type": "boolean"},
                "reason": {"type": "string", "nullable": True, "enum": [*REASONS, None]},
                "options": {"type": "array", "items": option},
                "payment": payment,
            },
        },
        "LinkSent": {
            "type": "object", "additionalProperties": False,
            "required": ["status", "recipients"],
            "properties": {"status": {"type": "string", "enum": ["sent"]},
                           "recipients": {"type": "integer", "minimum": 1}},
        },
    }


def webhook_schemas():
    """Endpoints, and the events POSTed to them and listed by the feed."""
    webhook = {
        "type": "object", "additionalProperties": False, "required": ["id", "url", "created"],
        "properties": {"id": {"type": "integer", "minimum": 1}, "url": {"type": "string"},
                       "created": TIMESTAMP},
    }
    new_webhook = {**webhook, "required": [*webhook["required"], "secret"],
                   "properties": {**webhook["properties"], "secret": {
                       "type": "string", "pattern": "^whsec_[0-9a-f]{64}$",
                       "description": "The signing secret. Shown this once; keep it."}}}
    contract = {
        "type": "object", "additionalProperties": False,
        "required": ["number", "status", "service_level", "term_months", "end_date"],
        "properties": {"number": {"type": "string"},
                       "status": {"type": "string", "enum": list(STATUSES)},
                       "service_level": {"type": "string"},
                       "term_months": {"type": "integer"}, "end_date": DATE},
    }
    order = {
        "type": "object", "additionalProperties": False,
        "required": ["reference", "status", "method", "amount_due", "currency",
                     "service_level", "term_months", "term_start", "term_end", "placed_at"],
        "properties": {"reference": {"type": "string"}, "status": {"type": "string"},
                       "method": {"type": "string"}, "amount_due": AMOUNT,
                       "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                       "service_level": {"type": "string"},
                       "term_months": {"type": "integer"}, "term_start": DATE,
                       "term_end": DATE, "placed_at": TIMESTAMP},
    }
    return {
        "Webhook": webhook,
        "NewWebhook": new_webhook,
        "Event": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "type", "created", "data"],
            "description": "An event of one of the partner's contracts. The same event can "
                           "arrive more than once (same `id`) and events can arrive out "
                           "of order.",
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"type": "string", "enum": list(EVENT_TYPES)},
                "created": TIMESTAMP,
                "data": {
                    "type": "object", "additionalProperties": False, "required": ["contract"],
                    "description": "`contract` always; `order` with order.* and "
                                   "contract.renewed; `previous_end_date` with "
                                   "contract.renewed; `auto_renew` with auto_renew.changed.",
                    "properties": {"contract": contract, "order": order,
                                   "previous_end_date": DATE,
                                   "auto_renew": {"type": "boolean"}},
                },
            },
        },
        "EventPage": {
            "type": "object", "additionalProperties": False,
            "required": ["events", "has_more"],
            "properties": {"events": {"type": "array", "items": _ref("Event")},
                           "has_more": {"type": "boolean"}},
        },
    }
