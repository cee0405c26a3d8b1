"""Pinned, versioned event topics: `pryv.<Aggregate>.<Event>.v1`.

Stored events and bus subjects use these names instead of Python import paths, so code can move
without rewriting history. A changed event shape gets a new `.v2` topic and an upcaster.
"""

from __future__ import annotations

from domain.aggregates import (
    Account,
    ApiKey,
    ChargeDispute,
    ChargeRefunds,
    CreditGrant,
    CreditPurchase,
    PaymentChannel,
    RejectedPayment,
    UsageHold,
)

ACCOUNT_OPENED = "pryv.Account.Opened.v1"
ACCOUNT_SETTINGS_CHANGED = "pryv.Account.SettingsChanged.v1"
ACCOUNT_CONNECTION_AUTHORIZED = "pryv.Account.ConnectionAuthorized.v1"
KEY_CREATED = "pryv.ApiKey.Created.v1"
KEY_LIMITS_CHANGED = "pryv.ApiKey.LimitsChanged.v1"
KEY_REVOKED = "pryv.ApiKey.Revoked.v1"
KEY_ROLLED = "pryv.ApiKey.Rolled.v1"
PURCHASE_COMPLETED = "pryv.CreditPurchase.Completed.v1"
PAYMENT_REJECTED = "pryv.RejectedPayment.Recorded.v1"
GRANT_GRANTED = "pryv.CreditGrant.Granted.v1"
REFUNDS_OPENED = "pryv.ChargeRefunds.Opened.v1"
REFUNDED = "pryv.ChargeRefunds.Refunded.v1"
DISPUTE_OPENED = "pryv.ChargeDispute.Opened.v1"
DISPUTE_REINSTATED = "pryv.ChargeDispute.Reinstated.v1"
HOLD_PLACED = "pryv.UsageHold.Placed.v1"
HOLD_SETTLED = "pryv.UsageHold.Settled.v1"
CHANNEL_OPENED = "pryv.PaymentChannel.Opened.v1"
CHANNEL_VOUCHER_ACCEPTED = "pryv.PaymentChannel.VoucherAccepted.v1"
CHANNEL_TOPPED_UP = "pryv.PaymentChannel.ToppedUp.v1"
CHANNEL_SPENT = "pryv.PaymentChannel.Spent.v1"
CHANNEL_CLOSE_STARTED = "pryv.PaymentChannel.CloseStarted.v1"
CHANNEL_CLOSED = "pryv.PaymentChannel.Closed.v1"


def _event_class(aggregate: type, name: str) -> type:
    """The event class that `@event("<name>")` declared on `aggregate`."""
    cls: type = getattr(aggregate, name)
    return cls


EVENT_TOPICS: dict[type, str] = {
    _event_class(Account, "Opened"): ACCOUNT_OPENED,
    _event_class(Account, "SettingsChanged"): ACCOUNT_SETTINGS_CHANGED,
    _event_class(Account, "ConnectionAuthorized"): ACCOUNT_CONNECTION_AUTHORIZED,
    _event_class(ApiKey, "Created"): KEY_CREATED,
    _event_class(ApiKey, "LimitsChanged"): KEY_LIMITS_CHANGED,
    _event_class(ApiKey, "Revoked"): KEY_REVOKED,
    _event_class(ApiKey, "Rolled"): KEY_ROLLED,
    _event_class(CreditPurchase, "Completed"): PURCHASE_COMPLETED,
    _event_class(RejectedPayment, "Recorded"): PAYMENT_REJECTED,
    _event_class(CreditGrant, "Granted"): GRANT_GRANTED,
    _event_class(ChargeRefunds, "Opened"): REFUNDS_OPENED,
    _event_class(ChargeRefunds, "Refunded"): REFUNDED,
    _event_class(ChargeDispute, "Opened"): DISPUTE_OPENED,
    _event_class(ChargeDispute, "Reinstated"): DISPUTE_REINSTATED,
    _event_class(UsageHold, "Placed"): HOLD_PLACED,
    _event_class(UsageHold, "Settled"): HOLD_SETTLED,
    _event_class(PaymentChannel, "Opened"): CHANNEL_OPENED,
    _event_class(PaymentChannel, "VoucherAccepted"): CHANNEL_VOUCHER_ACCEPTED,
    _event_class(PaymentChannel, "ToppedUp"): CHANNEL_TOPPED_UP,
    _event_class(PaymentChannel, "Spent"): CHANNEL_SPENT,
    _event_class(PaymentChannel, "CloseStarted"): CHANNEL_CLOSE_STARTED,
    _event_class(PaymentChannel, "Closed"): CHANNEL_CLOSED,
}

# Created events name their aggregate class; these are the names stored for them.
AGGREGATE_TOPICS: dict[type, str] = {
    cls: f"pryv.{cls.__name__}"
    for cls in (
        Account,
        ApiKey,
        CreditPurchase,
        CreditGrant,
        UsageHold,
        ChargeRefunds,
        ChargeDispute,
        RejectedPayment,
        PaymentChannel,
    )
}
