"""Holds placed straight through the application, for tests that need one without a request
(production places them through the meter's group commit)."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError

from commands.application import PryvApplication
from commands.results import CommandResult


def place_hold(app: PryvApplication, **hold_args: Any) -> CommandResult:
    """Durably reserve credit for one request; a repeated request id is a duplicate."""
    hold = app.new_hold(**hold_args)
    try:
        recordings = app.save(hold)
    except IntegrityError:
        return CommandResult(hold.id, None, duplicate=True)
    return CommandResult(hold.id, recordings[-1].notification.id)
