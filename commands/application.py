"""The Pryv application: one eventsourcing Application whose notification log is the whole truth.

Commands here are synchronous (eventsourcing's recorders are); async callers run them in a thread.
Each command returns the notification position it wrote so callers can wait for read models to
catch up (read-your-writes), and reports deterministic-id collisions as duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, Notification, Recording

from commands.event_mapper import PinnedTopicMapper
from commands.results import CommandResult, ConcurrentUpdate, InvalidCommand, NotFound
from commands.retries import on_collision
from domain import ids
from domain.aggregates import (
    Account,
    ApiKey,
    ChargeDispute,
    ChargeRefunds,
    CreditGrant,
    CreditPurchase,
    DomainRuleViolation,
    PaymentChannel,
    RejectedPayment,
    UsageHold,
)
from domain.api_keys import KEY_ENVS, ParsedApiKey, hash_api_key, issue_api_key
from domain.envelope import EventEnvelope
from domain.evidence import Authorization, Evidence, Presented


@dataclass
class ExpiryReport:
    settled: list[CommandResult] = field(default_factory=list)
    never_placed: list[UUID] = field(default_factory=list)


class _KeyCollision(Exception):
    """create_key's save found the key (or the account it opens) already there."""


@dataclass(frozen=True)
class CreatedKey:
    result: CommandResult
    issued: ParsedApiKey  # holds the token: return it to the caller once, never log or store it
    key: ApiKey


@dataclass(frozen=True)
class RolledKey:
    result: CommandResult
    issued: ParsedApiKey  # the new token: return it to the caller once, never log or store it


_A = TypeVar("_A", bound=Aggregate)


def _evidence(
    authorization: Authorization, event: str, aggregate_id: UUID, version: int, fields: Any
) -> Evidence:
    """The evidence for the event `event` at `version` of `aggregate_id` recording `fields`
    (exactly the event's fields: an operator signature covers them all)."""
    return authorization.evidence(event, aggregate_id, version, dict(fields))


def _new_key(
    issued: ParsedApiKey,
    wallet: str,
    name: str,
    pepper: bytes,
    authorization: Authorization,
    *,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    monthly_budget_micros: int | None = None,
    expires_at: str | None = None,
) -> ApiKey:
    """The ApiKey aggregate of a freshly issued key: only the HMAC of its token is kept."""
    fields: dict[str, Any] = dict(
        key_id=issued.key_id,
        account_id=str(ids.account_id(wallet)),
        wallet=wallet,
        name=name,
        env=issued.env,
        secret_hash=hash_api_key(pepper, issued.token),
        prefix=issued.prefix,
        last4=issued.last4,
        models=models or [],
        rpm=rpm,
        tpm=tpm,
        monthly_budget_micros=monthly_budget_micros,
        expires_at=expires_at,
    )
    aggregate_id = ApiKey.create_id(issued.key_id)
    evidence = _evidence(authorization, "ApiKey.Created", aggregate_id, 1, fields)
    return ApiKey(**fields, evidence=evidence)


def _open_dispute(
    dispute_id: str,
    charge_id: str,
    payment_intent: str | None,
    wallet: str,
    usd_micros: int,
    credits_micros: int,
    reason: str,
    evidence: Presented,
) -> ChargeDispute:
    return ChargeDispute(
        dispute_id=dispute_id,
        charge_id=charge_id,
        payment_intent=payment_intent,
        account_id=str(ids.account_id(wallet)),
        wallet=wallet,
        usd_micros=usd_micros,
        credits_micros=credits_micros,
        reason=reason,
        evidence=evidence.as_dict(),
    )


class PryvApplication(Application[UUID]):
    name = "pryv"
    log_section_size = 1000

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._listeners: list[Callable[[int], None]] = []

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PinnedTopicMapper
        )

    def on_recorded(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call `listener(position)` after each write, so an in-process relay can wake at once.

        Returns a function that removes the listener again.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            position = recordings[-1].notification.id
            for listener in self._listeners:
                listener(position)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read_log(self, after: int, limit: int) -> list[EventEnvelope]:
        """Up to `limit` events after log position `after`, as envelopes, in log order."""
        notifications = self.recorder.select_notifications(start=after + 1, limit=limit)
        return [to_envelope(n, self.mapper.to_domain_event(n)) for n in notifications]

    # --- saving -----------------------------------------------------------------------------

    def _save_new(self, *aggregates: Any) -> CommandResult:
        """Save freshly created aggregates; a collision means the command already happened."""
        try:
            recordings = self.save(*aggregates)
        except IntegrityError:
            return CommandResult(aggregates[-1].id, None, duplicate=True)
        return CommandResult(aggregates[-1].id, recordings[-1].notification.id)

    def _exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.repository

    def _get(self, cls: type[Any], aggregate_id: UUID) -> Any:
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError as exc:
            raise NotFound(str(aggregate_id)) from exc
        if not isinstance(aggregate, cls):
            raise NotFound(str(aggregate_id))
        return aggregate

    # --- accounts ---------------------------------------------------------------------------

    def open_account(self, wallet: str) -> CommandResult:
        return self._save_new(Account(wallet=wallet.lower()))

    def _account_if_new(self, wallet: str) -> list[Account]:
        """An Account aggregate to save alongside the first thing a wallet does, else nothing."""
        if self._exists(ids.account_id(wallet)):
            return []
        return [Account(wallet=wallet.lower())]

    def change_settings(
        self, wallet: str, sections: dict[str, Any], *, evidence: Presented
    ) -> CommandResult:
        """Replace the given top-level sections of the account's settings, keep the others.

        Merged on the aggregate (not a read model), so concurrent updates of different sections
        never undo each other; a racing update of the same aggregate retries on the new state.
        """
        return self._change_account(
            wallet,
            lambda account: account.change_settings(
                {**account.settings, **sections}, evidence.as_dict()
            ),
            InvalidCommand("settings changed concurrently; retry"),
        )

    def authorize_connection(
        self,
        *,
        wallet: str,
        key_id: str,
        client_id: str,
        client_name: str,
        scopes: list[str],
        evidence: Presented,
    ) -> CommandResult:
        """Record an MCP client's grant on the wallet's account (its key already exists)."""
        return self._change_account(
            wallet,
            lambda account: account.authorize_connection(
                key_id, client_id, client_name, scopes, evidence.as_dict()
            ),
            ConcurrentUpdate("the account changed concurrently; retry"),
        )

    def _change_account(
        self, wallet: str, change: Callable[[Account], None], collided: Exception
    ) -> CommandResult:
        """Apply `change` to the wallet's account (opened if new) and save, looking again when
        a racing writer saved it first; `collided` once that keeps happening."""
        self._ensure_account(wallet)
        try:
            for attempt in on_collision():
                with attempt:
                    account = self._get(Account, ids.account_id(wallet))
                    try:
                        change(account)
                    except DomainRuleViolation as exc:
                        raise InvalidCommand(str(exc)) from exc
                    recordings = self.save(account)
                    return CommandResult(account.id, recordings[-1].notification.id)
        except IntegrityError:
            pass
        raise collided

    def _ensure_account(self, wallet: str) -> None:
        if not self._exists(ids.account_id(wallet)):
            self.open_account(wallet)  # a concurrent opener makes this a duplicate: fine

    # --- keys -------------------------------------------------------------------------------

    def create_key(
        self,
        *,
        wallet: str,
        name: str,
        env: str,
        models: Iterable[str],
        rpm: int | None,
        tpm: int | None,
        monthly_budget_micros: int | None,
        expires_at: datetime | None,
        pepper: bytes,
        authorization: Authorization,
    ) -> CreatedKey:
        """Mint a key for `wallet`. The token in the result is the only copy that will exist."""
        if env not in KEY_ENVS:
            raise InvalidCommand(f"env must be one of {', '.join(KEY_ENVS)}")
        wallet = wallet.lower()
        model_list = sorted(set(models))
        try:
            for attempt in on_collision(2, _KeyCollision):
                with attempt:
                    issued = issue_api_key(env)
                    key = _new_key(
                        issued,
                        wallet,
                        name,
                        pepper,
                        authorization,
                        models=model_list,
                        rpm=rpm,
                        tpm=tpm,
                        monthly_budget_micros=monthly_budget_micros,
                        expires_at=_iso(expires_at),
                    )
                    result = self._save_new(*self._account_if_new(wallet), key)
                    if result.duplicate:
                        # A concurrent first call opened the account (or, at 62**-16 odds, the
                        # key id collided): once more with a fresh key, without the account.
                        raise _KeyCollision()
                    return CreatedKey(result, issued, key)
        except _KeyCollision:
            pass
        raise InvalidCommand("could not create key; retry")

    def ensure_service_key(
        self,
        *,
        wallet: str,
        key_id: str,
        name: str,
        env: str,
        pepper: bytes,
        authorization: Authorization,
    ) -> CommandResult:
        """A key Pryv itself meters a wallet's pay-per-call requests on (MPP): its id is
        chosen by the caller (derived, so the same wallet always finds the same key) and its
        secret is never shown to anyone. A duplicate if it exists."""
        wallet = wallet.lower()
        if self._exists(ids.api_key_id(key_id)):
            return CommandResult(ids.api_key_id(key_id), None, duplicate=True)
        issued = issue_api_key(env, key_id)  # type: ignore[arg-type]  # env checked by KEY_ENVS
        key = _new_key(issued, wallet, name, pepper, authorization)
        self._ensure_account(wallet)
        return self._save_new(key)

    def _owned_key(self, wallet: str, key_id: str) -> ApiKey:
        key: ApiKey = self._get(ApiKey, ids.api_key_id(key_id))
        if key.wallet != wallet.lower():
            raise NotFound(key_id)
        return key

    def change_key_limits(
        self,
        *,
        wallet: str,
        key_id: str,
        changes: Mapping[str, Any],
        authorization: Authorization,
    ) -> CommandResult:
        """Change some of a key's terms (name, models, rpm, tpm, monthly_budget_micros,
        expires_at); a term absent from `changes` keeps its value, a None clears it. Nothing
        new is a duplicate."""
        key = self._owned_key(wallet, key_id)
        current: dict[str, Any] = {
            "name": key.name,
            "models": sorted(key.models),
            "rpm": key.rpm,
            "tpm": key.tpm,
            "monthly_budget_micros": key.monthly_budget_micros,
            "expires_at": key.expires_at,
        }
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise InvalidCommand(f"not a key term: {', '.join(unknown)}")
        wanted = {**current, **changes}
        wanted["models"] = sorted(set(wanted["models"] or ()))
        if isinstance(wanted["expires_at"], datetime):
            wanted["expires_at"] = _iso(wanted["expires_at"])
        if wanted["name"] is None:
            raise InvalidCommand("a key keeps a name")
        if wanted == current:
            return CommandResult(key.id, None, duplicate=True)
        signed = {**wanted, "account_id": key.account_id}
        evidence = _evidence(authorization, "ApiKey.LimitsChanged", key.id, key.version + 1, signed)
        try:
            key.change_limits(**wanted, evidence=evidence)
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        recordings = self.save(key)
        return CommandResult(key.id, recordings[-1].notification.id)

    def roll_key(
        self,
        *,
        wallet: str,
        key_id: str,
        previous_expires_at: datetime,
        pepper: bytes,
        authorization: Authorization,
    ) -> RolledKey:
        """A new secret for a key the wallet owns; the current one works until
        `previous_expires_at`. The token in the result is the only copy that will exist."""
        key = self._owned_key(wallet, key_id)
        issued = issue_api_key(key.env, key.key_id)  # type: ignore[arg-type]  # a stored env
        expires = _iso(previous_expires_at)
        assert expires is not None
        fields = {
            "key_id": key.key_id,
            "secret_hash": hash_api_key(pepper, issued.token),
            "last4": issued.last4,
            "previous_secret_hash": key.secret_hash,
            "previous_expires_at": expires,
            "account_id": key.account_id,
        }
        evidence = _evidence(authorization, "ApiKey.Rolled", key.id, key.version + 1, fields)
        try:
            key.roll(
                secret_hash=fields["secret_hash"],
                last4=issued.last4,
                previous_expires_at=expires,
                evidence=evidence,
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        try:
            recordings = self.save(key)
        except IntegrityError as exc:  # a concurrent change of the same key: nothing rolled
            raise ConcurrentUpdate("the key changed concurrently; retry") from exc
        return RolledKey(CommandResult(key.id, recordings[-1].notification.id), issued)

    def revoke_key(
        self, *, wallet: str, key_id: str, reason: str, authorization: Authorization
    ) -> CommandResult:
        """Revoke a key the wallet owns. Revoking a revoked key is a duplicate, not an error."""
        key = self._owned_key(wallet, key_id)
        if key.revoked:
            return CommandResult(key.id, None, duplicate=True)
        fields = {"reason": reason, "account_id": key.account_id}
        key.revoke(
            reason, _evidence(authorization, "ApiKey.Revoked", key.id, key.version + 1, fields)
        )
        try:
            recordings = self.save(key)
        except IntegrityError:
            return CommandResult(key.id, None, duplicate=True)
        return CommandResult(key.id, recordings[-1].notification.id)

    # --- credits ----------------------------------------------------------------------------

    def grant_credits(
        self,
        *,
        wallet: str,
        env: str,
        amount_micros: int,
        reason: str,
        granted_by: str,
        grant_ref: str,
        authorization: Authorization,
    ) -> CommandResult:
        """Operator credit. `grant_ref` is the idempotency key: the same ref grants once."""
        if env not in KEY_ENVS:
            raise InvalidCommand(f"env must be one of {', '.join(KEY_ENVS)}")
        wallet = wallet.lower()
        fields: dict[str, Any] = dict(
            grant_ref=grant_ref,
            account_id=str(ids.account_id(wallet)),
            wallet=wallet,
            env=env,
            amount_micros=amount_micros,
            reason=reason,
            granted_by=granted_by,
        )
        evidence = _evidence(
            authorization, "CreditGrant.Granted", CreditGrant.create_id(grant_ref), 1, fields
        )
        try:
            grant = CreditGrant(**fields, evidence=evidence)
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        self._ensure_account(wallet)
        return self._save_new(grant)

    def record_purchase(
        self,
        *,
        source_id: str,
        wallet: str,
        usd_micros: int,
        credits_micros: int | None = None,
        source: str = "stripe",
        payment_intent: str | None = None,
        evidence: Presented,
    ) -> CommandResult:
        """Credit a completed payment once, however many times its webhook is delivered."""
        wallet = wallet.lower()
        try:
            purchase = CreditPurchase(
                source_id=source_id,
                account_id=str(ids.account_id(wallet)),
                wallet=wallet,
                usd_micros=usd_micros,
                credits_micros=usd_micros if credits_micros is None else credits_micros,
                source=source,
                payment_intent=payment_intent,
                evidence=evidence.as_dict(),
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        if self._exists(purchase.id):
            return CommandResult(purchase.id, None, duplicate=True)
        self._ensure_account(wallet)
        return self._save_new(purchase)

    def record_rejected_payment(
        self,
        *,
        source_id: str,
        reason: str,
        currency: str,
        amount_minor: int,
        source: str = "stripe",
        payment_intent: str | None = None,
        evidence: Presented,
    ) -> CommandResult:
        """Record, once, a payment that was refused credit (finance refunds it)."""
        try:
            rejected = RejectedPayment(
                source_id=source_id,
                source=source,
                reason=reason,
                currency=currency,
                amount_minor=amount_minor,
                payment_intent=payment_intent,
                evidence=evidence.as_dict(),
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        return self._save_new(rejected)

    # --- MPP payment channels ---------------------------------------------------------------

    def open_channel(self, channel: PaymentChannel) -> CommandResult:
        """Record a channel verified open on chain (a duplicate if it is already recorded)."""
        self._ensure_account(channel.wallet)
        return self._save_new(channel)

    def payment_channel(self, channel_id: str) -> PaymentChannel | None:
        """The channel's current state, read from the log (not a read model)."""
        try:
            found: PaymentChannel = self._get(PaymentChannel, ids.channel_id(channel_id))
        except NotFound:
            return None
        return found

    def change_channel(
        self,
        channel_id: str,
        change: Callable[[PaymentChannel], object],
        known: PaymentChannel | None = None,
    ) -> tuple[PaymentChannel, CommandResult]:
        """Apply `change` to the channel and save. `known` (a state this process read before)
        is brought up to date with only the newer events, so a long session does not replay
        its whole history per increment. A racing writer makes it look again, so voucher
        acceptance and spending are linearizable per channel across processes. The
        aggregate's DomainRuleViolations propagate with their codes; nothing new to save is
        a duplicate. Use the returned state: `known` is stale after any call."""
        try:
            for attempt in on_collision(5):
                with attempt:
                    channel = self._fresh_channel(channel_id, known)
                    known = None  # a retry reads the channel afresh
                    change(channel)
                    pending = channel.collect_events()
                    if not pending:
                        return channel, CommandResult(channel.id, None, duplicate=True)
                    recordings = self.save(*pending)
                    return channel, CommandResult(channel.id, recordings[-1].notification.id)
        except IntegrityError:
            pass
        raise ConcurrentUpdate("the channel changed concurrently; retry")

    def refresh_channel(self, channel: PaymentChannel) -> PaymentChannel:
        """`channel` with the events recorded since it was read applied."""
        return self._fresh_channel(channel.channel_id, channel)

    def _fresh_channel(self, channel_id: str, known: PaymentChannel | None) -> PaymentChannel:
        if known is None:
            found: PaymentChannel = self._get(PaymentChannel, ids.channel_id(channel_id))
            return found
        for recorded in self.events.get(known.id, gt=known.version):
            cast(Aggregate.Event, recorded).mutate(known)
        return known

    def has_grant(self, grant_ref: str) -> bool:
        """Whether the grant `grant_ref` was recorded (exact: reads the aggregate)."""
        return self._exists(ids.grant_id(grant_ref))

    def has_purchase(self, source_id: str) -> bool:
        """Whether the payment `source_id` has been credited (exact: reads the aggregate)."""
        return self._exists(ids.purchase_id(source_id))

    def record_refund(
        self,
        *,
        charge_id: str,
        payment_intent: str | None,
        wallet: str,
        charge_usd_micros: int,
        charge_credits_micros: int,
        total_refunded_usd_micros: int,
        evidence: Presented,
    ) -> CommandResult:
        """Reverse the credit of a refunded charge, up to Stripe's cumulative refunded total.

        Idempotent: a total already recorded (a redelivery, or an older webhook arriving late)
        is a duplicate.
        """
        wallet = wallet.lower()
        return self._change_racing(
            ChargeRefunds,
            ids.refunds_id(charge_id),
            lambda: ChargeRefunds(
                charge_id=charge_id,
                payment_intent=payment_intent,
                account_id=str(ids.account_id(wallet)),
                wallet=wallet,
                charge_usd_micros=charge_usd_micros,
                charge_credits_micros=charge_credits_micros,
                evidence=evidence.as_dict(),
            ),
            lambda refunds: refunds.refund_to(total_refunded_usd_micros, evidence.as_dict()),
            wallet=wallet,
            what=f"refund of {charge_id}",
        )

    def record_dispute(
        self,
        *,
        dispute_id: str,
        charge_id: str,
        payment_intent: str | None,
        wallet: str,
        usd_micros: int,
        credits_micros: int,
        reason: str,
        evidence: Presented,
    ) -> CommandResult:
        """Take back the disputed credit once per dispute."""
        wallet = wallet.lower()
        try:
            dispute = _open_dispute(
                dispute_id,
                charge_id,
                payment_intent,
                wallet,
                usd_micros,
                credits_micros,
                reason,
                evidence,
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        if self._exists(dispute.id):
            return CommandResult(dispute.id, None, duplicate=True)
        self._ensure_account(wallet)
        return self._save_new(dispute)

    def record_dispute_reinstated(
        self,
        *,
        dispute_id: str,
        charge_id: str,
        payment_intent: str | None,
        wallet: str,
        usd_micros: int,
        credits_micros: int,
        reason: str,
        status: str,
        evidence: Presented,
    ) -> CommandResult:
        """Give a won dispute's credit back, once. A dispute we never saw opened (its webhook
        lost or still on its way) is opened first, so the ledger shows the withdrawal and the
        reinstatement and their sum is zero; the late `created` is then a duplicate."""
        wallet = wallet.lower()
        return self._change_racing(
            ChargeDispute,
            ids.dispute_id(dispute_id),
            lambda: _open_dispute(
                dispute_id,
                charge_id,
                payment_intent,
                wallet,
                usd_micros,
                credits_micros,
                reason,
                evidence,
            ),
            lambda dispute: dispute.reinstate(status, evidence.as_dict()),
            wallet=wallet,
            what=f"dispute {dispute_id}",
        )

    def _change_racing(
        self,
        cls: type[_A],
        aggregate_id: UUID,
        open_new: Callable[[], _A],
        change: Callable[[_A], bool],
        *,
        wallet: str,
        what: str,
    ) -> CommandResult:
        """Load the aggregate (or open it), apply `change` and save; `change` returning False
        means nothing new (a duplicate). Deliveries racing collide on the aggregate version: the
        loser retries against the winner's state, a few times, then ConcurrentUpdate."""

        def once() -> CommandResult:
            try:
                aggregate: _A = self._get(cls, aggregate_id)
                new = False
            except NotFound:
                try:
                    aggregate = open_new()
                except DomainRuleViolation as exc:
                    raise InvalidCommand(str(exc)) from exc
                new = True
            try:
                changed = change(aggregate)
            except DomainRuleViolation as exc:
                raise InvalidCommand(str(exc)) from exc
            if not changed:
                return CommandResult(aggregate_id, None, duplicate=True)
            if new:
                self._ensure_account(wallet)
            recordings = self.save(aggregate)
            return CommandResult(aggregate_id, recordings[-1].notification.id)

        try:
            for attempt in on_collision():  # a concurrent delivery changed it first: look again
                with attempt:
                    return once()
        except IntegrityError:
            pass
        raise ConcurrentUpdate(f"{what} kept colliding")

    # --- holds ------------------------------------------------------------------------------

    def new_hold(
        self,
        *,
        key_id: str,
        request_id: str,
        account_id: str,
        env: str,
        amount_micros: int,
        expires_at: datetime,
        model: str,
    ) -> UsageHold:
        try:
            return UsageHold(
                key_id=key_id,
                request_id=request_id,
                account_id=account_id,
                env=env,
                amount_micros=amount_micros,
                expires_at=_iso(expires_at) or "",
                model=model,
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc

    def settle_hold(
        self,
        hold: UsageHold | UUID,
        *,
        cost_micros: int,
        tokens_in: int,
        tokens_out: int,
        outcome: str,
        estimated: bool = False,
    ) -> CommandResult:
        """Append the single settlement of a hold. A second settlement is a duplicate.

        Pass the UsageHold returned by `new_hold` to skip re-reading it from the store.
        """
        aggregate: UsageHold = hold if isinstance(hold, UsageHold) else self._get(UsageHold, hold)
        if aggregate.settled:
            return CommandResult(aggregate.id, None, duplicate=True)
        try:
            aggregate.settle(
                cost_micros=cost_micros,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                outcome=outcome,
                estimated=estimated,
            )
        except DomainRuleViolation as exc:
            raise InvalidCommand(str(exc)) from exc
        try:
            recordings = self.save(aggregate)
        except IntegrityError:
            return CommandResult(aggregate.id, None, duplicate=True)
        return CommandResult(aggregate.id, recordings[-1].notification.id)

    def expire_holds(self, candidates: Iterable[UUID], now: datetime) -> ExpiryReport:
        """Settle at zero, outcome `expired`, every candidate hold that is past its expiry and open.

        Candidates come from the holds read model; the decision is made on the aggregate itself.
        Candidates with no aggregate were admitted but never made durable (a crash between
        admission and the Placed append): they are reported so the read model can drop them.
        """
        report = ExpiryReport()
        for hold_id in candidates:
            try:
                hold: UsageHold = self._get(UsageHold, hold_id)
            except NotFound:
                report.never_placed.append(hold_id)
                continue
            if hold.settled or datetime.fromisoformat(hold.expires_at) > now:
                continue
            report.settled.append(
                self.settle_hold(hold, cost_micros=0, tokens_in=0, tokens_out=0, outcome="expired")
            )
        return report


_NOT_DATA = ("originator_id", "originator_version", "timestamp", "originator_topic")


def to_envelope(notification: Notification, event: Any) -> EventEnvelope:
    """The published form of a stored event: pinned topic, JSON primitives only."""
    state = vars(event)
    return EventEnvelope(
        position=notification.id,
        topic=notification.topic,
        originator_id=str(notification.originator_id),
        originator_version=notification.originator_version,
        timestamp=state["timestamp"].isoformat(),
        data={k: v for k, v in state.items() if k not in _NOT_DATA},
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidCommand("timestamps must carry a timezone")
    return moment.astimezone(UTC).isoformat()
