"""An in-memory fake of the parts of Stripe's HTTP API that Pryv uses, for driving the REAL
`stripe` SDK in tests (Stripe itself cannot be reached from CI).

A plain ASGI app served by uvicorn from a background thread (same pattern as
`tests.fakes.upstream`). Point the SDK at it with

    client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url},
                                 max_network_retries=0)

What it speaks, like Stripe does:

- auth: `Authorization: Bearer sk_...` (or `rk_...`); anything else is a 401 Stripe error;
- bodies `application/x-www-form-urlencoded` with bracket keys (`metadata[k]=v`,
  `line_items[0][price_data][unit_amount]=500`, `expand[]=x` / `expand[0]=x`), decoded to
  nested dicts/lists (`decode_form`); GET query strings likewise;
- `Idempotency-Key` on POSTs: same key + same endpoint + same params replays the first
  response byte for byte (header `Idempotent-Replayed: true`, no second object); same key with
  anything different is a 400 `idempotency_error`. Only successful results are stored (Stripe
  does not store results of requests that failed validation);
- `POST /v1/checkout/sessions` (mode=payment with `price_data` line items only),
  `GET /v1/checkout/sessions[/{id}]`, `GET /v1/{payment_intents,charges,refunds,disputes,
  balance_transactions,events}/{id}`, `GET /v1/balance_transactions` and `GET /v1/events`
  (newest first, `limit` 1..100 default 10, `starting_after` / `ending_before`, `created[gte]`
  etc., `type`, `source`), `expand` on all of them (`data.source` on lists);
- Stripe-shaped errors `{"error": {"type", "message", "code", "param"}}`.

Test control (not Stripe's): Python methods on `FakeStripe` (preferred) and the same under
`/_test/...` over HTTP (no auth, JSON or form body). Each returns the webhook **event** JSON
Stripe would send: `complete_session`, `expire_session`, `refund`, `dispute`, `escalate`,
`win_dispute` (a list: funds reinstated, then closed), `lose_dispute`; plus
`plant_balance_transaction` / `drop_balance_transaction` for reconciliation mismatches,
`fail_next` to inject an error (optionally after the request took effect, like a lost
response), `sign_webhook` / `webhook_request` for the `Stripe-Signature` header, and
`export_balance_transactions_csv` for a finance-style itemized report.

The hosted page at a session's `url` has a Pay button (POST: `complete_session`, the event kept
in `paid_events`, then a 303 to `success_url` with `{CHECKOUT_SESSION_ID}` filled in, as
Stripe redirects) and a Cancel link to `cancel_url`.

What the fake saw: `requests` (every request, decoded), `post_count(path)`.

Standalone: `uv run python -m tests.fakes.stripe_api --port 12111`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import csv
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import parse_qsl

import uvicorn
from stripe._api_version import _ApiVersion

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_VERSION: str = _ApiVersion.CURRENT
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
MIN_CHARGE_CENTS = {"usd": 50}  # Stripe's minimum charge amount (usd: $0.50)
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
CSV_HEADER = (
    "balance_transaction_id",
    "created_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "charge_id",
    "payment_intent_id",
    "dispute_id",
    "refund_id",
)

_ALNUM = string.ascii_letters + string.digits
_CURRENCY = re.compile(r"^[a-z]{3}$")
_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
_RETRIEVE = re.compile(
    r"^/v1/(checkout/sessions|payment_intents|charges|refunds|disputes|balance_transactions|events)"
    r"/([^/]+)$"
)
_TEST_ROUTE = re.compile(
    r"^/_test/(?:checkout/sessions/(?P<session>[^/]+)/(?P<session_action>complete|expire)"
    r"|charges/(?P<charge>[^/]+)/(?P<charge_action>refund|dispute)"
    r"|balance_transactions(?:/(?P<txn>[^/]+))?)$"
)
_JSON_HEADERS = [(b"content-type", b"application/json")]


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


# --- form encoding ---------------------------------------------------------------------------


class _Seq(dict):  # type: ignore[type-arg]
    """A container addressed by `[n]` or `[]`; turned into a list once decoding is done."""


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket form encoding -> nested dicts and lists (values stay strings).

    `a[b][0][c]=1&a[b][0][d]=2&expand[]=x&expand[]=y` ->
    `{"a": {"b": [{"c": "1", "d": "2"}]}, "expand": ["x", "y"]}`.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        base, bracket, rest = raw_key.partition("[")
        segments = [base]
        if bracket:
            if not rest.endswith("]"):
                raise StripeHTTPError(400, f"Invalid parameter name: {raw_key}", param=raw_key)
            segments += rest[:-1].split("][")
        node: dict[str, Any] = root
        for seg, nxt in itertools.pairwise(segments):
            key = str(len(node)) if seg == "" else seg
            child = node.get(key)
            if child is None:
                child = _Seq() if (nxt == "" or nxt.isdigit()) else {}
                node[key] = child
            elif not isinstance(child, dict):
                raise StripeHTTPError(
                    400, f"Invalid parameter: {raw_key} mixes a value and a hash", param=raw_key
                )
            node = child
        last = segments[-1]
        node[str(len(node)) if last == "" else last] = value
    decoded: dict[str, Any] = _finish(root)
    return decoded


def _finish(value: Any) -> Any:
    if isinstance(value, _Seq):
        if not all(k.isdigit() for k in value):
            raise StripeHTTPError(400, "Invalid array: mixes indexes and names")
        return [_finish(v) for _, v in sorted(value.items(), key=lambda kv: int(kv[0]))]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value


# --- errors ------------------------------------------------------------------------------------


class StripeHTTPError(Exception):
    """Rendered as Stripe's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _missing(param: str) -> StripeHTTPError:
    return StripeHTTPError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def _invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeHTTPError:
    return StripeHTTPError(400, message, code=code, param=param)


def _int_param(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer")
    try:
        return int(value)
    except ValueError:
        raise _invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer") from None


def _bool_param(value: Any) -> bool:
    return value is True or str(value).lower() in {"true", "1"}


def _metadata(value: Any, param: str) -> dict[str, str]:
    """Stripe's metadata rules; an empty-string value means 'not set' and is not stored."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid(param, "Invalid object")
    if len(value) > METADATA_MAX_KEYS:
        raise _invalid(param, f"Metadata can have up to {METADATA_MAX_KEYS} keys.")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(f"{param}[{key}]", "Invalid string")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise _invalid(f"{param}[{key}]", "Metadata keys can be up to 40 characters long.")
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise _invalid(f"{param}[{key}]", "Metadata values can be up to 500 characters long.")
        if item != "":
            out[key] = item
    return out


def _minor_to_major(amount: int) -> str:
    return f"{Decimal(int(amount)).scaleb(-2):.2f}"


def _utc(epoch: int) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- webhooks ----------------------------------------------------------------------------------


def sign_webhook(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends: `t=<ts>,v1=<hex HMAC-SHA256(secret,
    f"{t}.{payload}")>` (see stripe/_webhook.py WebhookSignature)."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    ts = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{ts}.{text}".encode(), hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def webhook_request(
    event: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of the POST Stripe would make to a webhook endpoint. The body is
    pretty-printed like Stripe's, so a consumer that re-serializes before verifying fails."""
    body = json.dumps(event, indent=2).encode()
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": sign_webhook(body, secret, timestamp),
    }


# --- the fake ----------------------------------------------------------------------------------


class FakeStripe:
    """The ASGI app, its in-memory Stripe account, and what it saw. `url` is set once served
    (`http://127.0.0.1:PORT`, no trailing slash)."""

    sign_webhook = staticmethod(sign_webhook)
    webhook_request = staticmethod(webhook_request)

    def __init__(self, *, api_keys: Iterable[str] | None = None) -> None:
        self.url = ""
        # When given, only these keys are accepted (any sk_/rk_ key otherwise).
        self.api_keys = set(api_keys) if api_keys is not None else None
        # Seconds since the epoch for new objects; tests may replace it.
        self.clock: Callable[[], int] = lambda: int(time.time())
        self._lock = threading.RLock()
        self._seq = 0
        self._sessions: dict[str, dict[str, Any]] = {}
        self.paid_events: dict[str, dict[str, Any]] = {}  # session id -> its completed event
        self._session_extra: dict[str, dict[str, Any]] = {}
        self._payment_intents: dict[str, dict[str, Any]] = {}
        self._shared_tokens: dict[str, dict[str, Any]] = {}  # spt_… → usage limits, used
        self._charges: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._disputes: dict[str, dict[str, Any]] = {}
        self._txns: dict[str, dict[str, Any]] = {}
        self._events: dict[str, dict[str, Any]] = {}
        self._order: dict[str, int] = {}  # object id -> insertion sequence (ties on `created`)
        self._idempotency: dict[tuple[str, str], tuple[str, int, bytes]] = {}
        self._posts: Counter[str] = Counter()
        self._requests: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []

    # --- what the fake saw / holds ------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every /v1 request: method, path, params (decoded), headers (lower-cased), api_key."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def post_count(self, path: str) -> int:
        """POSTs received for `path` (replays and rejected ones included)."""
        with self._lock:
            return self._posts[path]

    @property
    def posts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._posts)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._posts.clear()

    def _copy_store(self, store: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(store)

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        return self._copy_store(self._sessions)

    @property
    def payment_intents(self) -> dict[str, dict[str, Any]]:
        return self._copy_store(self._payment_intents)

    @property
    def charges(self) -> dict[str, dict[str, Any]]:
        return self._copy_store(self._charges)

    @property
    def refunds(self) -> dict[str, dict[str, Any]]:
        return self._copy_store(self._refunds)

    @property
    def disputes(self) -> dict[str, dict[str, Any]]:
        return self._copy_store(self._disputes)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event the test controls produced, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._events.values()))

    @property
    def balance_transactions(self) -> list[dict[str, Any]]:
        """Newest first, like the API lists them."""
        with self._lock:
            return copy.deepcopy(self._newest_first(self._txns.values()))

    def _newest_first(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(objects, key=lambda o: (o["created"], self._order[o["id"]]), reverse=True)

    def _remember(self, store: dict[str, dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        self._order[obj["id"]] = self._seq
        store[obj["id"]] = obj
        return obj

    def _lookup(self, object_id: str) -> dict[str, Any] | None:
        for prefix, store in (
            ("cs_", self._sessions),
            ("pi_", self._payment_intents),
            ("ch_", self._charges),
            ("re_", self._refunds),
            ("du_", self._disputes),
            ("txn_", self._txns),
            ("evt_", self._events),
        ):
            if object_id.startswith(prefix):
                return store.get(object_id)
        return None

    # --- failure injection --------------------------------------------------------------------

    def fail_next(
        self,
        path: str,
        *,
        method: str = "POST",
        status: int = 500,
        times: int = 1,
        after_commit: bool = False,
        should_retry: bool | None = None,
    ) -> None:
        """The next `times` requests to `method path` answer `status` with a Stripe api_error.
        `after_commit=True`: the request takes effect first (object created, idempotent result
        stored) and only the response is lost, as when a connection drops. `should_retry` sets
        the `Stripe-Should-Retry` header the SDK honours."""
        with self._lock:
            self._failures.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "status": status,
                    "times": times,
                    "after_commit": after_commit,
                    "should_retry": should_retry,
                }
            )

    def _take_failure(self, method: str, path: str) -> dict[str, Any] | None:
        for failure in self._failures:
            if failure["method"] == method and failure["path"] == path and failure["times"] > 0:
                failure["times"] -= 1
                if failure["times"] == 0:
                    self._failures.remove(failure)
                return failure
        return None

    # --- events -------------------------------------------------------------------------------

    def _event(
        self,
        type_: str,
        obj: dict[str, Any],
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.clock(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self._remember(self._events, event)
        return copy.deepcopy(event)

    # --- balance transactions -----------------------------------------------------------------

    def _add_txn(
        self,
        *,
        amount: int,
        type_: str,
        reporting_category: str,
        source: str | None,
        description: str | None,
        currency: str = "usd",
        fee: int = 0,
        created: int | None = None,
        txn_id: str | None = None,
    ) -> dict[str, Any]:
        when = self.clock() if created is None else int(created)
        txn = {
            "id": txn_id or new_id("txn_"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": when,
            "created": when,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [],
            "net": amount - fee,
            "reporting_category": reporting_category,
            "source": source,
            "status": "available",
            "type": type_,
        }
        return self._remember(self._txns, txn)

    def plant_balance_transaction(self, **fields: Any) -> dict[str, Any]:
        """Add an arbitrary balance transaction (reconciliation mismatches). Any field may be
        given; `net` defaults to amount - fee, `reporting_category` follows type/source."""
        with self._lock:
            amount = int(fields.pop("amount", 0))
            fee = int(fields.pop("fee", 0))
            source = fields.pop("source", None)
            type_ = fields.pop("type", "adjustment")
            category = fields.pop("reporting_category", None)
            if category is None:
                category = {"charge": "charge", "payment": "charge", "refund": "refund"}.get(
                    type_
                ) or {"ch_": "charge", "re_": "refund", "du_": "dispute"}.get(
                    str(source)[:3], "other_adjustment"
                )
            txn = self._add_txn(
                amount=amount,
                type_=type_,
                reporting_category=category,
                source=source,
                description=fields.pop("description", None),
                currency=fields.pop("currency", "usd"),
                fee=fee,
                created=fields.pop("created", None),
                txn_id=fields.pop("id", None),
            )
            txn.update(fields)
            if "available_on" not in fields:
                txn["available_on"] = txn["created"]
            return copy.deepcopy(txn)

    def drop_balance_transaction(self, txn_id: str) -> dict[str, Any]:
        """Remove a balance transaction (KeyError if unknown); returns it."""
        with self._lock:
            txn = self._txns.pop(txn_id)
            self._order.pop(txn_id, None)
            return txn

    # --- checkout sessions --------------------------------------------------------------------

    def _create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = p.get("mode")
        if mode in (None, ""):
            raise _missing("mode")
        if mode != "payment":
            raise _invalid("mode", f"Invalid mode: this fake supports only `payment`, not {mode}")
        items = p.get("line_items")
        if items in (None, "", []):
            raise _missing("line_items")
        if not isinstance(items, list):
            raise _invalid("line_items", "Invalid array")
        total = 0
        currency: str | None = None
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise _invalid(where, "Invalid object")
            if "price" in item:
                raise _invalid(f"{where}[price]", "This fake supports only `price_data`.")
            price_data = item.get("price_data")
            if not isinstance(price_data, dict):
                raise _missing(f"{where}[price_data]")
            cur = price_data.get("currency")
            if not cur:
                raise _missing(f"{where}[price_data][currency]")
            cur = str(cur).lower()
            if not _CURRENCY.match(cur):
                raise _invalid(f"{where}[price_data][currency]", f"Invalid currency: {cur}")
            if currency is not None and cur != currency:
                raise _invalid(
                    f"{where}[price_data][currency]", "Line items must all have the same currency."
                )
            currency = cur
            if price_data.get("unit_amount") in (None, ""):
                raise _missing(f"{where}[price_data][unit_amount]")
            unit_amount = _int_param(price_data["unit_amount"], f"{where}[price_data][unit_amount]")
            if unit_amount < 0:
                raise _invalid(
                    f"{where}[price_data][unit_amount]",
                    "This value must be greater than or equal to 0.",
                )
            product = price_data.get("product_data")
            if not isinstance(product, dict):
                raise _missing(f"{where}[price_data][product_data]")
            if not product.get("name"):
                raise _missing(f"{where}[price_data][product_data][name]")
            if item.get("quantity") in (None, ""):
                raise _missing(f"{where}[quantity]")
            quantity = _int_param(item["quantity"], f"{where}[quantity]")
            if quantity < 1:
                raise _invalid(
                    f"{where}[quantity]", "This value must be greater than or equal to 1."
                )
            total += unit_amount * quantity
        assert currency is not None
        minimum = MIN_CHARGE_CENTS.get(currency)
        if minimum is not None and total < minimum:
            raise StripeHTTPError(
                400,
                "The Checkout Session's total amount due must add up to at least "
                f"${_minor_to_major(minimum)} {currency}",
                code="amount_too_small",
            )
        for name in ("success_url", "cancel_url"):
            url = p.get(name)
            if not url:
                raise _missing(name)
            if not _URL.match(str(url)):
                raise _invalid(name, "Not a valid URL", "url_invalid")
        metadata = _metadata(p.get("metadata"), "metadata")
        client_reference_id = p.get("client_reference_id") or None
        if client_reference_id is not None and len(str(client_reference_id)) > 200:
            raise _invalid("client_reference_id", "client_reference_id is too long (max 200).")
        pi_data = p.get("payment_intent_data") or {}
        if not isinstance(pi_data, dict):
            raise _invalid("payment_intent_data", "Invalid object")
        pi_metadata = _metadata(pi_data.get("metadata"), "payment_intent_data[metadata]")
        now = self.clock()
        expires_at = _int_param(p["expires_at"], "expires_at") if p.get("expires_at") else None
        session_id = new_id("cs_test_")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": p["cancel_url"],
            "client_reference_id": client_reference_id,
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_email": p.get("customer_email") or None,
            "expires_at": expires_at or now + 24 * 3600,
            "livemode": False,
            "metadata": metadata,
            "mode": mode,
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": p["success_url"],
            "url": f"{self.url}/pay/{session_id}",
        }
        self._remember(self._sessions, session)
        self._session_extra[session_id] = {
            "pi_metadata": pi_metadata,
            "description": pi_data.get("description") or None,
            "line_items": items,
        }
        return session

    @overload
    def complete_session(
        self, session_id: str, *, async_payment: Literal[False] = False
    ) -> dict[str, Any]: ...

    @overload
    def complete_session(
        self, session_id: str, *, async_payment: Literal[True]
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def complete_session(
        self, session_id: str, *, async_payment: bool = False
    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """The customer pays: PaymentIntent + Charge + charge balance transaction. Returns the
        `checkout.session.completed` event (payment_status "paid"); with `async_payment` the
        pair (completed with payment_status "unpaid", `checkout.session.async_payment_succeeded`
        with "paid") -- only the second should credit."""
        with self._lock:
            session = self._sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            extra = self._session_extra[session_id]
            amount, currency = session["amount_total"], session["currency"]
            pi_id = self._record_payment(
                amount, currency, extra["description"], dict(extra["pi_metadata"])
            )["id"]
            session.update(status="complete", payment_intent=pi_id, url=None)
            if not async_payment:
                session["payment_status"] = "paid"
                return self._event("checkout.session.completed", session)
            session["payment_status"] = "unpaid"
            completed = self._event("checkout.session.completed", session)
            session["payment_status"] = "paid"
            succeeded = self._event("checkout.session.async_payment_succeeded", session)
            return completed, succeeded

    # --- shared payment tokens (MPP's stripe charge) ----------------------------------------------

    def issue_shared_token(self, max_amount: int, currency: str = "usd") -> str:
        """What a buyer's agent gets from Stripe for one payment: a single-use `spt_…` good
        for at most `max_amount` minor units."""
        with self._lock:
            spt = new_id("spt_")
            self._shared_tokens[spt] = {
                "max_amount": max_amount,
                "currency": currency,
                "used": False,
            }
            return spt

    def _create_payment_intent(self, p: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/payment_intents, the SPT flow only: `shared_payment_granted_token` with
        `confirm=true` charges the token's payment method at once (Stripe's own refusals:
        unknown, used, over its limit, another currency)."""
        _check_known(
            p,
            {
                "amount",
                "currency",
                "shared_payment_granted_token",
                "confirm",
                "metadata",
                "automatic_payment_methods",
                "description",
            },
        )
        spt = p.get("shared_payment_granted_token")
        if not spt:
            raise _missing("shared_payment_granted_token")
        amount = _int_param(p.get("amount"), "amount")
        currency = str(p.get("currency") or "")
        metadata = _metadata(p.get("metadata"), "metadata")
        with self._lock:
            token = self._shared_tokens.get(str(spt))
            if token is None:
                raise StripeHTTPError(
                    400,
                    f"No such shared payment token: '{spt}'",
                    code="resource_missing",
                    param="shared_payment_granted_token",
                )
            if token["used"]:
                raise StripeHTTPError(
                    400,
                    "This shared payment token was already used.",
                    code="shared_payment_token_used",
                )
            if amount > token["max_amount"] or currency != token["currency"]:
                raise StripeHTTPError(
                    402,
                    "The amount exceeds the token's usage limits.",
                    type="card_error",
                    code="card_declined",
                )
            token["used"] = True
            return self._record_payment(amount, currency, p.get("description"), metadata)

    def _record_payment(
        self, amount: int, currency: str, description: str | None, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """A succeeded PaymentIntent with its Charge and the charge's balance transaction (the
        caller holds the lock); returns the PaymentIntent."""
        now = self.clock()
        pi_id, charge_id = new_id("pi_"), new_id("ch_")
        txn = self._add_txn(
            amount=amount,
            type_="charge",
            reporting_category="charge",
            source=charge_id,
            description=description,
            currency=currency,
        )
        self._remember(
            self._charges,
            {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "balance_transaction": txn["id"],
                "captured": True,
                "created": now,
                "currency": currency,
                "description": description,
                "disputed": False,
                "livemode": False,
                "metadata": dict(metadata),
                "paid": True,
                "payment_intent": pi_id,
                "refunded": False,
                "status": "succeeded",
            },
        )
        return self._remember(
            self._payment_intents,
            {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "created": now,
                "currency": currency,
                "customer": None,
                "description": description,
                "latest_charge": charge_id,
                "livemode": False,
                "metadata": dict(metadata),
                "status": "succeeded",
            },
        )

    def expire_session(self, session_id: str) -> dict[str, Any]:
        """An open session expires unpaid: `checkout.session.expired`."""
        with self._lock:
            session = self._sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            session.update(status="expired", url=None)
            return self._event("checkout.session.expired", session)

    # --- refunds and disputes -----------------------------------------------------------------

    def refund(self, charge_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund `amount` cents (the whole unrefunded rest when None; capped at it). Returns
        `charge.refunded` whose object is the charge (no `refunds` list, as in current API
        versions: consumers use `amount_refunded`)."""
        with self._lock:
            charge = self._charges[charge_id]
            remaining = charge["amount"] - charge["amount_refunded"]
            if remaining <= 0:
                raise ValueError(f"charge {charge_id} is already fully refunded")
            refunded = remaining if amount is None else min(int(amount), remaining)
            if refunded <= 0:
                raise ValueError("refund amount must be positive")
            refund_id = new_id("re_")
            txn = self._add_txn(
                amount=-refunded,
                type_="refund",
                reporting_category="refund",
                source=refund_id,
                description=f"REFUND FOR CHARGE ({charge['description'] or charge_id})",
                currency=charge["currency"],
            )
            self._remember(
                self._refunds,
                {
                    "id": refund_id,
                    "object": "refund",
                    "amount": refunded,
                    "balance_transaction": txn["id"],
                    "charge": charge_id,
                    "created": self.clock(),
                    "currency": charge["currency"],
                    "metadata": {},
                    "payment_intent": charge["payment_intent"],
                    "reason": None,
                    "status": "succeeded",
                },
            )
            previous = {"amount_refunded": charge["amount_refunded"], "refunded": False}
            charge["amount_refunded"] += refunded
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            return self._event("charge.refunded", charge, previous)

    def dispute(
        self,
        charge_id: str,
        amount: int | None = None,
        reason: str = "fraudulent",
        *,
        inquiry: bool = False,
    ) -> dict[str, Any]:
        """The cardholder disputes the charge. A chargeback withdraws the funds at once (a
        negative "adjustment" with reporting_category "dispute"); an inquiry (`inquiry=True`,
        status "warning_needs_response") withdraws nothing until `escalate`. Returns
        `charge.dispute.created`."""
        with self._lock:
            charge = self._charges[charge_id]
            if charge["disputed"]:
                raise ValueError(f"charge {charge_id} is already disputed")
            disputed = charge["amount"] if amount is None else min(int(amount), charge["amount"])
            dispute = self._remember(
                self._disputes,
                {
                    "id": new_id("du_"),
                    "object": "dispute",
                    "amount": disputed,
                    "balance_transactions": [],
                    "charge": charge_id,
                    "created": self.clock(),
                    "currency": charge["currency"],
                    "is_charge_refundable": inquiry,
                    "livemode": False,
                    "metadata": {},
                    "payment_intent": charge["payment_intent"],
                    "reason": reason,
                    "status": "warning_needs_response" if inquiry else "needs_response",
                },
            )
            if not inquiry:
                self._move_dispute_funds(dispute, -disputed, "dispute", "withdrawal")
            charge["disputed"] = True
            return self._event("charge.dispute.created", dispute)

    def escalate(self, dispute_id: str) -> dict[str, Any]:
        """An inquiry becomes a chargeback: funds withdrawn. Returns
        `charge.dispute.funds_withdrawn`."""
        with self._lock:
            dispute = self._disputes[dispute_id]
            if not dispute["status"].startswith("warning_"):
                raise ValueError(f"dispute {dispute_id} is not an inquiry")
            dispute.update(status="needs_response", is_charge_refundable=False)
            self._move_dispute_funds(dispute, -dispute["amount"], "dispute", "withdrawal")
            return self._event("charge.dispute.funds_withdrawn", dispute)

    def win_dispute(self, dispute_id: str) -> list[dict[str, Any]]:
        """The merchant wins: the funds come back (a positive "adjustment" with
        reporting_category "dispute_reversal"). Returns `charge.dispute.funds_reinstated` and
        `charge.dispute.closed` (status "won"), in the order Stripe sends them."""
        with self._lock:
            dispute = self._disputes[dispute_id]
            if dispute["status"] in ("won", "lost") or dispute["status"].startswith("warning_"):
                raise ValueError(f"dispute {dispute_id} has no withdrawn funds to reinstate")
            self._move_dispute_funds(dispute, dispute["amount"], "dispute_reversal", "reversal")
            dispute["status"] = "won"
            return [
                self._event("charge.dispute.funds_reinstated", dispute),
                self._event("charge.dispute.closed", dispute, {"status": "under_review"}),
            ]

    def lose_dispute(self, dispute_id: str) -> dict[str, Any]:
        """The cardholder wins: the funds stay withdrawn. Returns `charge.dispute.closed`."""
        with self._lock:
            dispute = self._disputes[dispute_id]
            dispute["status"] = "lost"
            return self._event("charge.dispute.closed", dispute, {"status": "under_review"})

    def _move_dispute_funds(
        self, dispute: dict[str, Any], amount: int, category: str, what: str
    ) -> None:
        txn = self._add_txn(
            amount=amount,
            type_="adjustment",
            reporting_category=category,
            source=dispute["id"],
            description=f"Chargeback {what} for {dispute['charge']}",
            currency=dispute["currency"],
        )
        dispute["balance_transactions"].append(copy.deepcopy(txn))

    # --- reports ------------------------------------------------------------------------------

    def export_balance_transactions_csv(self, path: Path) -> None:
        """Stripe's "Balance change from activity -- itemized" style report, oldest first,
        amounts in major units ("12.34", "-5.00")."""
        with self._lock:
            rows = []
            for txn in reversed(self._newest_first(self._txns.values())):
                source = txn.get("source") or ""
                charge_id = pi_id = dispute_id = refund_id = ""
                if source.startswith("ch_"):
                    charge_id = source
                elif source.startswith("re_"):
                    refund_id = source
                    charge_id = (self._refunds.get(source) or {}).get("charge") or ""
                elif source.startswith("du_"):
                    dispute_id = source
                    charge_id = (self._disputes.get(source) or {}).get("charge") or ""
                if charge_id:
                    pi_id = (self._charges.get(charge_id) or {}).get("payment_intent") or ""
                rows.append(
                    [
                        txn["id"],
                        _utc(txn["created"]),
                        txn["currency"],
                        _minor_to_major(txn["amount"]),
                        _minor_to_major(txn["fee"]),
                        _minor_to_major(txn["net"]),
                        txn["reporting_category"],
                        source,
                        txn.get("description") or "",
                        charge_id,
                        pi_id,
                        dispute_id,
                        refund_id,
                    ]
                )
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            writer.writerows(rows)

    # --- HTTP: the Stripe API -----------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """One request -> (status, body, extra headers). Thread-safe; no awaits inside."""
        request_id = new_id("req_", 14)
        out_headers = [("request-id", request_id)]
        if path.startswith("/_test/"):
            status, payload = self._handle_test(method, path, body, headers)
            return status, json.dumps(payload).encode(), out_headers
        with self._lock:
            try:
                return self._handle_api(method, path, query, body, headers, out_headers)
            except StripeHTTPError as exc:
                return exc.status, json.dumps(exc.body()).encode(), out_headers

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "").strip()
        key = ""
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            with contextlib.suppress(ValueError):
                key = base64.b64decode(auth[6:]).decode().partition(":")[0]
        if not key:
            raise StripeHTTPError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not key.startswith(("sk_", "rk_")) or (
            self.api_keys is not None and key not in self.api_keys
        ):
            masked = key[: key.find("_", 3) + 1] + "*" * max(len(key) - 12, 4) + key[-4:]
            raise StripeHTTPError(401, f"Invalid API Key provided: {masked}")
        return key

    def _handle_api(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        headers: dict[str, str],
        out_headers: list[tuple[str, str]],
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "params": {},
            "headers": dict(headers),
            "api_key": None,
        }
        self._requests.append(record)
        if method == "POST":
            self._posts[path] += 1
        record["api_key"] = self._authenticate(headers)
        params = decode_form(parse_qsl(query, keep_blank_values=True))
        if method == "POST":
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if body and content_type != "application/x-www-form-urlencoded":
                raise StripeHTTPError(
                    400, f"Invalid request: unsupported Content-Type {content_type}."
                )
            params.update(decode_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
        record["params"] = copy.deepcopy(params)

        failure = self._take_failure(method, path)
        if failure is not None and not failure["after_commit"]:
            return self._failure_response(failure, out_headers)

        key = headers.get("idempotency-key") if method == "POST" else None
        if key is not None:
            if len(key) > 255:
                raise _invalid("Idempotency-Key", "Idempotency-Key must be at most 255 chars.")
            out_headers.append(("idempotency-key", key))
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            stored = self._idempotency.get((record["api_key"], key))
            if stored is not None:
                first_fingerprint, status, payload = stored
                if first_fingerprint != fingerprint:
                    raise StripeHTTPError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                out_headers.append(("idempotent-replayed", "true"))
                if failure is not None:
                    return self._failure_response(failure, out_headers)
                return status, payload, out_headers

        status, obj = self._route(method, path, params)
        payload = json.dumps(obj).encode()
        if key is not None and 200 <= status < 300:
            self._idempotency[(record["api_key"], key)] = (fingerprint, status, payload)
        if failure is not None:
            return self._failure_response(failure, out_headers)
        return status, payload, out_headers

    @staticmethod
    def _failure_response(
        failure: dict[str, Any], out_headers: list[tuple[str, str]]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        if failure["should_retry"] is not None:
            out_headers.append(("stripe-should-retry", str(failure["should_retry"]).lower()))
        error = StripeHTTPError(
            failure["status"],
            "An unknown error occurred (injected by the fake).",
            type="api_error",
        )
        return failure["status"], json.dumps(error.body()).encode(), out_headers

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        expand = params.pop("expand", [])
        if isinstance(expand, str):
            expand = [expand]
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._expanded(self._create_session(params), expand)
        if method == "POST" and path == "/v1/payment_intents":
            return 200, self._expanded(self._create_payment_intent(params), expand)
        if method == "GET" and path == "/v1/balance_transactions":
            filters = {"type": "type", "source": "source", "currency": "currency"}
            return 200, self._list(self._txns, params, path, expand, filters)
        if method == "GET" and path == "/v1/events":
            return 200, self._list(self._events, params, path, expand, {"type": "type"})
        if method == "GET" and path == "/v1/checkout/sessions":
            filters = {"payment_intent": "payment_intent", "status": "status"}
            return 200, self._list(self._sessions, params, path, expand, filters)
        match = _RETRIEVE.match(path)
        if method == "GET" and match:
            _check_known(params, set())
            obj = self._lookup(match.group(2))
            expected = {
                "checkout/sessions": "checkout.session",
                "payment_intents": "payment_intent",
                "charges": "charge",
                "refunds": "refund",
                "disputes": "dispute",
                "balance_transactions": "balance_transaction",
                "events": "event",
            }[match.group(1)]
            if obj is None or obj["object"] != expected:
                raise StripeHTTPError(
                    404,
                    f"No such {expected.replace('_', ' ')}: '{match.group(2)}'",
                    code="resource_missing",
                    param="id",
                )
            return 200, self._expanded(obj, expand)
        raise StripeHTTPError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    def _list(
        self,
        store: dict[str, dict[str, Any]],
        params: dict[str, Any],
        url: str,
        expand: list[str],
        filters: dict[str, str],
    ) -> dict[str, Any]:
        _check_known(params, {"limit", "starting_after", "ending_before", "created", *filters})
        limit = DEFAULT_LIST_LIMIT
        if params.get("limit") not in (None, ""):
            limit = _int_param(params["limit"], "limit")
            if not 1 <= limit <= MAX_LIST_LIMIT:
                raise _invalid("limit", f"Invalid limit: must be between 1 and {MAX_LIST_LIMIT}.")
        items = self._newest_first(store.values())
        for param, field in filters.items():
            if params.get(param):
                items = [o for o in items if o.get(field) == params[param]]
        created = params.get("created")
        if created not in (None, ""):
            items = [o for o in items if _created_matches(o["created"], created)]
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeHTTPError(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        cursor = after or before
        if cursor:
            anchor = store.get(cursor)
            if anchor is None:
                raise StripeHTTPError(
                    400,
                    f"No such object: '{cursor}'",
                    code="resource_missing",
                    param="starting_after" if after else "ending_before",
                )
            mark = (anchor["created"], self._order[cursor])
            if after:  # older than the cursor (lists are newest first)
                window = [o for o in items if (o["created"], self._order[o["id"]]) < mark]
                page, has_more = window[:limit], len(window) > limit
            else:
                window = [o for o in items if (o["created"], self._order[o["id"]]) > mark]
                page, has_more = window[-limit:], len(window) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        item_paths = []
        for path in expand:
            if not path.startswith("data."):
                raise _invalid(
                    "expand",
                    f"This property cannot be expanded ({path}). You may want to try expanding "
                    f"'data.{path}' instead.",
                )
            item_paths.append(path[len("data.") :])
        return {
            "object": "list",
            "data": [self._expanded(o, item_paths) for o in page],
            "has_more": has_more,
            "url": url,
        }

    def _expanded(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        for path in paths:
            self._expand_into(out, path.split("."), path)
        return out

    def _expand_into(self, obj: dict[str, Any], segments: list[str], full: str) -> None:
        key, rest = segments[0], segments[1:]
        value = obj.get(key, ...)
        if isinstance(value, str):
            found = self._lookup(value)
            if found is None and not value.startswith(("cs_", "pi_", "ch_", "re_", "du_", "txn_")):
                raise _invalid("expand", f"This property cannot be expanded ({full}).")
            if found is not None:
                value = copy.deepcopy(found)
                obj[key] = value
        elif value is not None and not isinstance(value, (dict, list)):
            raise _invalid("expand", f"This property cannot be expanded ({full}).")
        if rest and isinstance(value, dict):
            self._expand_into(value, rest, full)
        elif rest and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    self._expand_into(item, rest, full)

    # --- HTTP: test controls ------------------------------------------------------------------

    def _handle_test(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any]:
        match = _TEST_ROUTE.match(path)
        try:
            args: dict[str, Any] = {}
            if body:
                if headers.get("content-type", "").startswith("application/json"):
                    args = json.loads(body)
                else:
                    args = decode_form(parse_qsl(body.decode(), keep_blank_values=True))
            if match is None:
                raise KeyError(path)
            if match["session"] and method == "POST":
                if match["session_action"] == "expire":
                    return 200, self.expire_session(match["session"])
                if _bool_param(args.get("async_payment", False)):
                    return 200, list(self.complete_session(match["session"], async_payment=True))
                return 200, self.complete_session(match["session"])
            if match["charge"] and method == "POST":
                amount = int(args["amount"]) if args.get("amount") not in (None, "") else None
                if match["charge_action"] == "refund":
                    return 200, self.refund(match["charge"], amount)
                reason = str(args.get("reason") or "fraudulent")
                return 200, self.dispute(match["charge"], amount, reason)
            if match["txn"] and method == "DELETE":
                return 200, self.drop_balance_transaction(match["txn"])
            if not match["txn"] and method == "POST" and path == "/_test/balance_transactions":
                return 200, self.plant_balance_transaction(**args)
            raise KeyError(path)
        except KeyError as exc:
            return 404, {"error": {"type": "not_found", "message": f"unknown: {exc}"}}
        except (ValueError, TypeError) as exc:
            return 400, {"error": {"type": "invalid_request_error", "message": str(exc)}}

    def _pay_page(self, session_id: str) -> tuple[int, bytes]:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return 404, b"<h1>No such checkout session</h1>"
            amount = _minor_to_major(session["amount_total"])
            text = f"<h1>Fake Stripe Checkout</h1><p>{session_id}: {amount} {session['currency']}"
            back = _with_session(session["cancel_url"], session_id)
            form = (
                f'<form method="post" action="/pay/{session_id}"><button id="pay">Pay</button>'
                f'</form><a id="cancel" href="{back}">Cancel</a>'
            )
            return 200, f"{text} ({session['status']})</p>{form}".encode()

    def _pay(self, session_id: str) -> tuple[int, str]:
        """The buyer pressed Pay: the session completes and the browser goes to success_url."""
        with self._lock:
            if session_id not in self._sessions:
                return 404, ""
            self.paid_events[session_id] = self.complete_session(session_id)
            return 303, _with_session(self._sessions[session_id]["success_url"], session_id)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is turned off; websockets are not served
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if path.startswith("/pay/") and method == "POST":
            status, location = self._pay(path[len("/pay/") :])
            headers = [(b"location", location.encode())] if location else []
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if path.startswith("/pay/") and method == "GET":
            status, page = self._pay_page(path[len("/pay/") :])
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": page})
            return
        headers_in = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, payload, extra = self.handle(
            method, path, scope.get("query_string", b"").decode("latin-1"), bytes(raw), headers_in
        )
        out = _JSON_HEADERS + [(k.encode(), v.encode()) for k, v in extra]
        out.append((b"stripe-version", headers_in.get("stripe-version", API_VERSION).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})


def _with_session(url: str, session_id: str) -> str:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id)


def _check_known(params: dict[str, Any], known: set[str]) -> None:
    for name in params:
        if name not in known:
            raise StripeHTTPError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def _created_matches(created: int, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return created == _int_param(condition, "created")
    checks = {
        "gt": lambda v: created > v,
        "gte": lambda v: created >= v,
        "lt": lambda v: created < v,
        "lte": lambda v: created <= v,
    }
    for op, value in condition.items():
        if op not in checks:
            raise StripeHTTPError(
                400, f"Received unknown parameter: created[{op}]", param=f"created[{op}]"
            )
        if not checks[op](_int_param(value, f"created[{op}]")):
            return False
    return True


def _config(app: FakeStripe, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        **kwargs,
    )


@contextlib.contextmanager
def running_fake_stripe(
    port: int = 0, *, api_keys: Iterable[str] | None = None
) -> Iterator[FakeStripe]:
    """Serve a FakeStripe on 127.0.0.1 (a free port when 0) from a background thread."""
    fake = FakeStripe(api_keys=api_keys)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(fake))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-stripe", daemon=True
    )
    # The session URL embeds it, so it must be known before anything is created.
    fake.url = f"http://127.0.0.1:{bound_port}"
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake stripe did not start")
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", bound_port), timeout=2):
            pass
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Stripe API (test mode, in memory).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    args = parser.parse_args()
    fake = FakeStripe()
    fake.url = f"http://{args.host}:{args.port}"
    print(f"fake stripe on {fake.url}", flush=True)
    uvicorn.Server(_config(fake, host=args.host, port=args.port)).run()


if __name__ == "__main__":
    main()
