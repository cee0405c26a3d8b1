"""Event-sourced aggregates. Every money- or key-relevant fact is one of these events.

Each aggregate id is deterministic (see `domain.ids`), so re-running a command collides instead of
applying twice. There is no hot aggregate: every purchase, grant and request hold is its own.
Events carry only JSON primitives (str, int, bool, list[str], None) so the log is readable by any
tool, and settlement events repeat the hold's account/key/amount so projections stay stateless.
Money and key events carry `evidence` (domain.evidence): who authorized them, checkable offline;
it defaults to None only so that events recorded before it existed still replay.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import PryvError


class DomainRuleViolation(PryvError, ValueError):
    """A command that the aggregate's current state forbids (e.g. settling a settled hold)."""

    code = "rule_violation"


class Account(Aggregate):
    """A wallet's account. Holds settings; balances are projections of purchases, grants, holds."""

    @staticmethod
    def create_id(wallet: str) -> UUID:
        return ids.account_id(wallet)

    @event("Opened")
    def __init__(self, wallet: str) -> None:
        self.wallet = wallet.lower()
        self.settings: dict[str, Any] = {}

    @event("SettingsChanged")
    def change_settings(
        self, settings: dict[str, Any], evidence: dict[str, str] | None = None
    ) -> None:
        self.settings = dict(settings)

    @event("ConnectionAuthorized")
    def authorize_connection(
        self,
        key_id: str,
        client_id: str,
        client_name: str,
        scopes: list[str],
        evidence: dict[str, str] | None = None,
    ) -> None:
        """The wallet signed an MCP client's consent: the connection is the key `key_id`
        (its env and limits are the key's), usable with these scopes."""
        if not key_id or not client_id:
            raise DomainRuleViolation("a connection names its key and its client")


class ApiKey(Aggregate):
    @staticmethod
    def create_id(key_id: str) -> UUID:
        return ids.api_key_id(key_id)

    @event("Created")
    def __init__(
        self,
        key_id: str,
        account_id: str,
        wallet: str,
        name: str,
        env: str,
        secret_hash: str,
        prefix: str,
        last4: str,
        models: list[str],
        rpm: int | None,
        tpm: int | None,
        monthly_budget_micros: int | None,
        expires_at: str | None,
        evidence: dict[str, str] | None = None,
    ) -> None:
        self.key_id = key_id
        self.account_id = account_id
        self.wallet = wallet
        self.name = name
        self.env = env
        self.secret_hash = secret_hash
        self.prefix = prefix
        self.last4 = last4
        self.models = list(models)
        self.rpm = rpm
        self.tpm = tpm
        self.monthly_budget_micros = monthly_budget_micros
        self.expires_at = expires_at
        self.revoked = False
        self.previous_secret_hash = ""  # a rolled key's earlier secret, in its grace period
        self.previous_expires_at: str | None = None

    def change_limits(
        self,
        *,
        name: str,
        models: list[str],
        rpm: int | None,
        tpm: int | None,
        monthly_budget_micros: int | None,
        expires_at: str | None,
        evidence: dict[str, str],
    ) -> None:
        if self.revoked:
            raise DomainRuleViolation("a revoked key cannot change")
        self._limits_changed(
            name,
            list(models),
            rpm,
            tpm,
            monthly_budget_micros,
            expires_at,
            evidence,
            self.account_id,
        )

    @event("LimitsChanged")
    def _limits_changed(
        self,
        name: str,
        models: list[str],
        rpm: int | None,
        tpm: int | None,
        monthly_budget_micros: int | None,
        expires_at: str | None,
        evidence: dict[str, str] | None = None,
        account_id: str = "",  # repeated for the account's activity log ("": older events)
    ) -> None:
        self.name = name
        self.models = list(models)
        self.rpm = rpm
        self.tpm = tpm
        self.monthly_budget_micros = monthly_budget_micros
        self.expires_at = expires_at

    def roll(
        self,
        *,
        secret_hash: str,
        last4: str,
        previous_expires_at: str,
        evidence: dict[str, str],
    ) -> None:
        """A new secret for the same key id (Stripe's "roll key"): the current secret keeps
        working until `previous_expires_at` (which may be now), then only the new one does.
        Rolling again ends the earlier secret's grace at once: one previous secret at most."""
        if self.revoked:
            raise DomainRuleViolation("a revoked key cannot be rolled")
        if secret_hash == self.secret_hash:
            raise DomainRuleViolation("a rolled key gets a new secret")
        self._rolled(
            self.key_id,
            secret_hash,
            last4,
            self.secret_hash,
            previous_expires_at,
            evidence,
            self.account_id,
        )

    @event("Rolled")
    def _rolled(
        self,
        key_id: str,  # repeated so the key index maps the new secret without a lookup
        secret_hash: str,
        last4: str,
        previous_secret_hash: str,
        previous_expires_at: str,
        evidence: dict[str, str] | None = None,
        account_id: str = "",
    ) -> None:
        self.secret_hash = secret_hash
        self.last4 = last4
        self.previous_secret_hash = previous_secret_hash
        self.previous_expires_at = previous_expires_at

    def revoke(self, reason: str, evidence: dict[str, str]) -> None:
        if self.revoked:
            raise DomainRuleViolation("key already revoked")
        self._revoked(reason, evidence, self.account_id)

    @event("Revoked")
    def _revoked(
        self, reason: str, evidence: dict[str, str] | None = None, account_id: str = ""
    ) -> None:
        self.revoked = True


class CreditPurchase(Aggregate):
    """Credits bought through a payment processor; the id derives from the payment's source id."""

    @staticmethod
    def create_id(source_id: str) -> UUID:
        return ids.purchase_id(source_id)

    @event("Completed")
    def __init__(
        self,
        source_id: str,
        account_id: str,
        wallet: str,
        usd_micros: int,
        credits_micros: int,
        source: str,
        payment_intent: str | None,
        evidence: dict[str, str] | None = None,
    ) -> None:
        if usd_micros <= 0 or credits_micros <= 0:
            raise DomainRuleViolation("a purchase credits a positive amount")
        self.source_id = source_id
        self.account_id = account_id
        self.wallet = wallet
        self.usd_micros = usd_micros
        self.credits_micros = credits_micros
        self.source = source
        self.payment_intent = payment_intent


class CreditGrant(Aggregate):
    """Credits given by an operator (support, promotions, test balances); a reason is mandatory."""

    @staticmethod
    def create_id(grant_ref: str) -> UUID:
        return ids.grant_id(grant_ref)

    @event("Granted")
    def __init__(
        self,
        grant_ref: str,
        account_id: str,
        wallet: str,
        env: str,
        amount_micros: int,
        reason: str,
        granted_by: str,
        evidence: dict[str, str] | None = None,
    ) -> None:
        if amount_micros <= 0:
            raise DomainRuleViolation("a grant credits a positive amount")
        if not reason.strip():
            raise DomainRuleViolation("a grant needs a reason")
        self.grant_ref = grant_ref
        self.account_id = account_id
        self.wallet = wallet
        self.env = env
        self.amount_micros = amount_micros
        self.reason = reason
        self.granted_by = granted_by


class RejectedPayment(Aggregate):
    """A payment the processor reports as made but that Pryv refused to credit (a currency
    other than Pryv's, no valid wallet to credit). Recorded so finance sees money that arrived
    and was not credited (to refund it), instead of it being lost in a log line."""

    @staticmethod
    def create_id(source_id: str) -> UUID:
        return ids.rejected_payment_id(source_id)

    @event("Recorded")
    def __init__(
        self,
        source_id: str,
        source: str,
        reason: str,
        currency: str,
        amount_minor: int,
        payment_intent: str | None,
        evidence: dict[str, str] | None = None,
    ) -> None:
        if not reason.strip():
            raise DomainRuleViolation("a rejected payment needs a reason")
        self.source_id = source_id
        self.source = source
        self.reason = reason
        self.currency = currency
        self.amount_minor = amount_minor
        self.payment_intent = payment_intent


def credits_for(usd_micros: int, purchase_usd_micros: int, purchase_credits_micros: int) -> int:
    """Credits that `usd_micros` of a purchase bought (packs can carry bonus credit), floored."""
    return usd_micros * purchase_credits_micros // purchase_usd_micros


class ChargeRefunds(Aggregate):
    """Refunds of one card charge. Stripe reports the cumulative `amount_refunded`; each new
    total becomes one `Refunded` posting of the difference, so redelivered or reordered
    webhooks never reverse credit twice."""

    @staticmethod
    def create_id(charge_id: str) -> UUID:
        return ids.refunds_id(charge_id)

    @event("Opened")
    def __init__(
        self,
        charge_id: str,
        payment_intent: str | None,
        account_id: str,
        wallet: str,
        charge_usd_micros: int,
        charge_credits_micros: int,
        evidence: dict[str, str] | None = None,
    ) -> None:
        if charge_usd_micros <= 0 or charge_credits_micros < 0:
            raise DomainRuleViolation("a refunded charge has a positive amount")
        self.charge_id = charge_id
        self.payment_intent = payment_intent
        self.account_id = account_id
        self.wallet = wallet
        self.charge_usd_micros = charge_usd_micros
        self.charge_credits_micros = charge_credits_micros
        self.refunded_usd_micros = 0
        self.refunded_credits_micros = 0

    def refund_to(self, total_refunded_usd_micros: int, evidence: dict[str, str]) -> bool:
        """Bring the refunded total up to Stripe's; False when nothing new (a redelivery)."""
        if total_refunded_usd_micros > self.charge_usd_micros:
            raise DomainRuleViolation("refunded more than the charge")
        if total_refunded_usd_micros <= self.refunded_usd_micros:
            return False
        credits_total = credits_for(
            total_refunded_usd_micros, self.charge_usd_micros, self.charge_credits_micros
        )
        self._refunded(
            account_id=self.account_id,
            charge_id=self.charge_id,
            usd_micros=total_refunded_usd_micros - self.refunded_usd_micros,
            credits_micros=credits_total - self.refunded_credits_micros,
            total_usd_micros=total_refunded_usd_micros,
            evidence=evidence,
        )
        return True

    @event("Refunded")
    def _refunded(
        self,
        account_id: str,
        charge_id: str,
        usd_micros: int,
        credits_micros: int,
        total_usd_micros: int,
        evidence: dict[str, str] | None = None,
    ) -> None:
        self.refunded_usd_micros = total_usd_micros
        self.refunded_credits_micros += credits_micros


class ChargeDispute(Aggregate):
    """A chargeback on a card charge: the disputed credit is taken back when Stripe withdraws
    the funds, and given back once if Stripe reinstates them (the dispute was won)."""

    @staticmethod
    def create_id(dispute_id: str) -> UUID:
        return ids.dispute_id(dispute_id)

    @event("Opened")
    def __init__(
        self,
        dispute_id: str,
        charge_id: str,
        payment_intent: str | None,
        account_id: str,
        wallet: str,
        usd_micros: int,
        credits_micros: int,
        reason: str,
        evidence: dict[str, str] | None = None,
    ) -> None:
        if usd_micros <= 0 or credits_micros < 0:
            raise DomainRuleViolation("a dispute is for a positive amount")
        self.dispute_id = dispute_id
        self.charge_id = charge_id
        self.payment_intent = payment_intent
        self.account_id = account_id
        self.wallet = wallet
        self.usd_micros = usd_micros
        self.credits_micros = credits_micros
        self.reason = reason
        self.reinstated = False

    def reinstate(self, status: str, evidence: dict[str, str]) -> bool:
        """Give the withdrawn credit back; False when it already was (a redelivery)."""
        if self.reinstated:
            return False
        self._reinstated(
            account_id=self.account_id,
            dispute_id=self.dispute_id,
            charge_id=self.charge_id,
            usd_micros=self.usd_micros,
            credits_micros=self.credits_micros,
            status=status,
            evidence=evidence,
        )
        return True

    @event("Reinstated")
    def _reinstated(
        self,
        account_id: str,
        dispute_id: str,
        charge_id: str,
        usd_micros: int,
        credits_micros: int,
        status: str,
        evidence: dict[str, str] | None = None,
    ) -> None:
        self.reinstated = True


SETTLEMENT_OUTCOMES = ("ok", "client_abort", "upstream_error", "expired")


class UsageHold(Aggregate):
    """Credit reserved for one request before the upstream call, settled once after it."""

    @staticmethod
    def create_id(key_id: str, request_id: str) -> UUID:
        return ids.hold_id(key_id, request_id)

    @event("Placed")
    def __init__(
        self,
        key_id: str,
        request_id: str,
        account_id: str,
        env: str,
        amount_micros: int,
        expires_at: str,
        model: str,
    ) -> None:
        if amount_micros < 0:
            raise DomainRuleViolation("a hold is never negative")
        self.key_id = key_id
        self.request_id = request_id
        self.account_id = account_id
        self.env = env
        self.amount_micros = amount_micros
        self.expires_at = expires_at
        self.model = model
        self.settled = False

    def settle(
        self,
        *,
        cost_micros: int,
        tokens_in: int,
        tokens_out: int,
        outcome: str,
        estimated: bool,
        pii_counts: dict[str, int] | None = None,
    ) -> None:
        """Debit what the request cost, never more than was held: the account was only ever
        reserved the hold, so charging beyond it could overspend. What the upstream reported
        beyond the hold is recorded as `shortfall_micros` (uncharged, for finance to see), with
        the reported tokens, instead of vanishing. `pii_counts`: entity types and how many
        were redacted — never the values."""
        if self.settled:
            raise DomainRuleViolation("hold already settled")
        if outcome not in SETTLEMENT_OUTCOMES:
            raise DomainRuleViolation(f"unknown settlement outcome {outcome!r}")
        if cost_micros < 0 or tokens_in < 0 or tokens_out < 0:
            raise DomainRuleViolation("settlement amounts are never negative")
        charged = min(cost_micros, self.amount_micros)
        self._settled(
            account_id=self.account_id,
            key_id=self.key_id,
            request_id=self.request_id,
            env=self.env,
            model=self.model,
            held_micros=self.amount_micros,
            actual_micros=charged,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            outcome=outcome,
            estimated=estimated,
            pii_counts=dict(sorted((pii_counts or {}).items())),
            shortfall_micros=cost_micros - charged,
        )

    @event("Settled")
    def _settled(
        self,
        account_id: str,
        key_id: str,
        request_id: str,
        env: str,
        model: str,
        held_micros: int,
        actual_micros: int,
        tokens_in: int,
        tokens_out: int,
        outcome: str,
        estimated: bool,
        pii_counts: dict[str, int] | None = None,
        shortfall_micros: int = 0,  # absent from settlements recorded before it existed
    ) -> None:
        self.settled = True
        self.actual_micros = actual_micros
        self.shortfall_micros = shortfall_micros


class PaymentChannel(Aggregate):
    """A Tempo stream channel (MPP `session` intent) whose vouchers pay for requests as they
    are served.

    The session draft's server accounting, as invariants: the accepted voucher only grows and
    never exceeds the deposit; `spent` only grows and never exceeds the accepted voucher (so
    nothing is served that no voucher covers); nothing changes once the channel is closed.
    Every increase of `spent` is its own `Spent` event, appended before the service it pays
    for is delivered, so after a crash the log is the money truth.
    """

    @staticmethod
    def create_id(channel_id: str) -> UUID:
        return ids.channel_id(channel_id)

    @event("Opened")
    def __init__(
        self,
        channel_id: str,
        chain_id: int,
        escrow: str,
        token: str,
        payer: str,
        payee: str,
        authorized_signer: str,
        deposit: int,
        open_tx: str,
        account_id: str,
        wallet: str,
        env: str,
    ) -> None:
        if deposit <= 0:
            raise DomainRuleViolation("a channel opens with a deposit")
        self.channel_id = channel_id
        self.chain_id = chain_id
        self.escrow = escrow
        self.token = token
        self.payer = payer
        self.payee = payee
        self.authorized_signer = authorized_signer
        self.deposit = deposit
        self.account_id = account_id
        self.wallet = wallet
        self.env = env  # "test" on a test chain: its money buys test credit only
        self.accepted = 0
        self.signature = ""
        self.spent = 0
        self.closing = False
        self.captured = 0
        self.closed = False
        self.close_tx: str | None = None

    @property
    def available(self) -> int:
        return self.accepted - self.spent

    def _open(self) -> None:
        if self.closed:
            raise DomainRuleViolation("the channel is closed", code="channel_finalized")

    def accept_voucher(self, cumulative: int, signature: str) -> bool:
        """Record a higher voucher; False for a resubmission of the accepted one (idempotent).
        The caller has verified the signature."""
        self._open()
        if self.closing:
            raise DomainRuleViolation("the channel is closing", code="channel_finalized")
        if cumulative == self.accepted:
            return False
        if cumulative < self.accepted:
            raise DomainRuleViolation(
                f"voucher {cumulative} is below the accepted {self.accepted}",
                code="voucher_below_accepted",
            )
        if cumulative > self.deposit:
            raise DomainRuleViolation(
                f"voucher {cumulative} exceeds the deposit {self.deposit}",
                code="amount_exceeds_deposit",
            )
        self._voucher_accepted(cumulative=cumulative, signature=signature)
        return True

    @event("VoucherAccepted")
    def _voucher_accepted(self, cumulative: int, signature: str) -> None:
        self.accepted = cumulative
        self.signature = signature

    def top_up(self, deposit: int, tx_hash: str) -> None:
        self._open()
        if self.closing:
            raise DomainRuleViolation("the channel is closing", code="channel_finalized")
        if deposit <= self.deposit:
            raise DomainRuleViolation("a top-up raises the deposit")
        self._topped_up(deposit=deposit, tx_hash=tx_hash)

    @event("ToppedUp")
    def _topped_up(self, deposit: int, tx_hash: str) -> None:
        self.deposit = deposit

    def spend(
        self, *, amount: int, request_id: str, model: str, tokens_in: int, tokens_out: int
    ) -> None:
        """Raise `spent` by `amount` for service about to be delivered (a delta, so two
        streams on one channel each pay for their own)."""
        self._open()
        if self.closing:
            raise DomainRuleViolation("the channel is closing", code="channel_finalized")
        if amount <= 0:
            raise DomainRuleViolation("a spend is positive")
        if self.spent + amount > self.accepted:
            raise DomainRuleViolation(
                f"spending {self.spent + amount} needs a voucher; {self.accepted} is accepted",
                code="insufficient_balance",
            )
        self._spent(
            spent=self.spent + amount,
            delta=amount,
            request_id=request_id,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            account_id=self.account_id,
            channel_id=self.channel_id,
            env=self.env,
        )

    @event("Spent")
    def _spent(
        self,
        spent: int,
        delta: int,
        request_id: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        account_id: str,
        channel_id: str,
        env: str,
    ) -> None:
        self.spent = spent

    def start_close(self, captured: int) -> bool:
        """Stop all spending before the escrow close is broadcast, so nothing is served after
        the capture is fixed; False if a close for `captured` is already under way (retry)."""
        self._open()
        if self.closing:
            if captured != self.captured:
                raise DomainRuleViolation(f"the channel is closing for {self.captured}")
            return False
        if captured != self.spent:
            raise DomainRuleViolation("a close captures exactly what was spent")
        self._close_started(captured=captured)
        return True

    @event("CloseStarted")
    def _close_started(self, captured: int) -> None:
        self.closing = True
        self.captured = captured

    def close(self, *, tx_hash: str, settled: int, refund_tx: str = "") -> None:
        """Closed on chain by `tx_hash`; `settled` is what the escrow paid the payee (finance
        compares it with `captured`); `refund_tx` gave back what the escrow paid beyond
        `captured` (a close the payer forced, settled with a voucher above what was spent)."""
        self._open()
        if not self.closing:
            raise DomainRuleViolation("start the close first")
        self._closed(
            captured=self.captured,
            tx_hash=tx_hash,
            settled=settled,
            refund_tx=refund_tx,
            account_id=self.account_id,
            channel_id=self.channel_id,
        )

    @event("Closed")
    def _closed(
        self,
        captured: int,
        tx_hash: str,
        settled: int,
        refund_tx: str,
        account_id: str,
        channel_id: str,
    ) -> None:
        self.closed = True
        self.close_tx = tx_hash
