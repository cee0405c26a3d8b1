"""Checks every money and key event's authorization evidence against the log's own history.

`domain.evidence` has the per-event rules; this adds what needs history: whose key or account
an event acts for (the wallet that must have signed it), a wallet message authorizing one
event only (its nonce is spent), and usage holds placed only on keys the log created for the
same account. `pryv audit verify` runs it over the whole log; the sealer runs it over each
event before sealing it (after priming it with the events it already sealed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from domain import ids
from domain.evidence import REQUIRED, RecordedEvent, evidence_problem, nonce_of
from infra.wallet_signatures import recover_signer

_NOT_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "class_version",
        "evidence",
    }
)
# Events the history needs besides those that carry evidence.
_TRACKED = frozenset({"Account.Opened", "UsageHold.Placed", *REQUIRED})


def event_name(topic: str) -> str:
    """`pryv.ApiKey.Created.v1` -> `ApiKey.Created` (the pinned topic's aggregate.event)."""
    parts = topic.split(".")
    return ".".join(parts[1:3]) if len(parts) == 4 and parts[0] == "pryv" else topic


def tracks(topic: str) -> bool:
    """Whether an event with this stored topic needs decoding for the evidence audit."""
    return event_name(topic) in _TRACKED


def recorded_event(name: str, event: Any) -> RecordedEvent:
    state = vars(event)
    return RecordedEvent(
        name=name,
        aggregate_id=event.originator_id,
        version=event.originator_version,
        timestamp=event.timestamp,
        fields={k: v for k, v in state.items() if k not in _NOT_FIELDS},
        evidence=state.get("evidence"),
    )


@dataclass
class EvidenceAudit:
    """Stateful: feed it the log in order. `operators`: the trusted operator addresses."""

    operators: tuple[str, ...] = ()
    recover: Callable[[str, str], str] = recover_signer
    key_owners: dict[UUID, tuple[str, str]] = field(default_factory=dict)  # wallet, account
    account_wallets: dict[UUID, str] = field(default_factory=dict)
    spent_nonces: set[tuple[str, str]] = field(default_factory=set)
    operators_seen: set[str] = field(default_factory=set)
    checked: int = 0

    def problem(self, name: str, event: Any) -> str | None:
        """Why `event` (decoded, named `name`) is not authorized; None when it is. A good
        event is remembered; a bad one is not (it must not vouch for later ones)."""
        recorded = recorded_event(name, event)
        why = self._hold_problem(recorded) or evidence_problem(
            recorded,
            recover=self.recover,
            operators=self.operators,
            owner=self._owner(recorded),
            key_aggregate=ids.api_key_id,
        )
        nonce = nonce_of(recorded.evidence)
        if why is None and nonce is not None and nonce in self.spent_nonces:
            why = f"the wallet message with nonce {nonce[1]!r} already authorized another event"
        if why is None:
            self.observe(recorded)
            if name in REQUIRED:
                self.checked += 1
        return why

    def observe(self, recorded: RecordedEvent) -> None:
        """Remember what later events are checked against (priming, or after a pass)."""
        fields, evidence = recorded.fields, recorded.evidence
        if recorded.name == "Account.Opened":
            self.account_wallets[recorded.aggregate_id] = str(fields["wallet"]).lower()
        elif recorded.name == "ApiKey.Created":
            self.key_owners[recorded.aggregate_id] = (
                str(fields["wallet"]).lower(),
                str(fields["account_id"]),
            )
        nonce = nonce_of(evidence)
        if nonce is not None:
            self.spent_nonces.add(nonce)
        if evidence and evidence.get("kind") == "operator":
            self.operators_seen.add(str(evidence.get("operator", "")).lower())

    def _owner(self, recorded: RecordedEvent) -> str | None:
        name, fields = recorded.name, recorded.fields
        if name == "ApiKey.Created":
            return str(fields["wallet"])
        if name.startswith("ApiKey."):
            owner = self.key_owners.get(recorded.aggregate_id)
            return owner[0] if owner else None
        if name.startswith("Account."):
            return self.account_wallets.get(recorded.aggregate_id)
        return None

    def _hold_problem(self, recorded: RecordedEvent) -> str | None:
        if recorded.name != "UsageHold.Placed":
            return None
        key_id = str(recorded.fields.get("key_id", ""))
        owner = self.key_owners.get(ids.api_key_id(key_id))
        if owner is None:
            return f"a hold on key {key_id!r}, which the log never created"
        if owner[1] != str(recorded.fields.get("account_id")):
            return f"a hold on key {key_id!r} debiting an account that is not the key's"
        return None


class RawStored(Protocol):
    """One stored event as the sealer reads it (eventsourcing's Notification fits)."""

    @property
    def id(self) -> int: ...

    @property
    def topic(self) -> str: ...


@dataclass
class SealingGate:
    """What the sealer asks before sealing each event: is it authorized? The events it has
    already sealed are replayed into the audit once (`prime`) so history checks (whose key,
    spent nonces) hold across sealer restarts."""

    decode: Callable[[Any], Any]
    audit: EvidenceAudit
    seen_to: int = 0  # notification id of the last event the audit has taken in

    def prime(self, events: Iterable[RawStored]) -> None:
        for event in events:
            if event.id <= self.seen_to:
                continue
            if tracks(event.topic):
                try:
                    decoded = self.decode(event)
                except Exception:  # sealed already: `pryv audit verify` names it
                    decoded = None
                if decoded is not None:
                    self.audit.observe(recorded_event(event_name(event.topic), decoded))
            self.seen_to = event.id

    def refusal(self, event: RawStored) -> str | None:
        """Why `event` must not be sealed; None (and it is taken in) when it may be."""
        if event.id <= self.seen_to:
            return None
        if tracks(event.topic):
            try:
                decoded = self.decode(event)
            except Exception as exc:
                return f"does not decode: {exc}"
            why = self.audit.problem(event_name(event.topic), decoded)
            if why is not None:
                return why
        self.seen_to = event.id
        return None
