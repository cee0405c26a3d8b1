"""Authorization evidence for tests that write events directly (not through the HTTP doors)."""

from __future__ import annotations

from domain.evidence import Presented, stripe_event
from infra.operator_key import OperatorSigner

# A fixed operator key, so tests can pin its address as the trusted operator.
OPERATOR = OperatorSigner("0x" + "0e" * 32)


def stripe(event_id: str = "evt_test") -> Presented:
    return stripe_event(event_id)
