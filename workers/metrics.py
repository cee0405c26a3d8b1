"""Each worker process's own metrics, for `--metrics-port` (the API's /metrics reads the shared
state — lags, open holds; these say what this process did and where it is)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from audit.sealer import Sealer
from infra.metrics import ReadCounters, ReadGauges
from workers.projector import Projector
from workers.relay import Relay
from workers.sweeper import HoldSweeper


def relay_metrics(relay: Relay) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        ReadCounters(
            lambda: (relay.published,),
            (("pryv_relay_published_events", "Events this relay published to the bus"),),
        )
    )
    registry.register(
        ReadGauges(
            lambda: (relay.position,),
            (("pryv_relay_position", "Log position this relay has published through"),),
        )
    )
    return registry


def projector_metrics(projector: Projector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        ReadCounters(
            lambda: (projector.applied_events,),
            (("pryv_projector_applied_events", "Bus events this projector applied"),),
        )
    )
    registry.register(
        ReadGauges(
            lambda: (projector.last_seq,),
            (("pryv_projector_bus_sequence", "Bus sequence this projector has applied"),),
        )
    )
    return registry


def sweeper_metrics(sweeper: HoldSweeper) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        ReadCounters(
            lambda: (sweeper.expired_holds, sweeper.released_holds),
            (
                ("pryv_sweeper_expired_holds", "Holds of dead requests settled at zero"),
                ("pryv_sweeper_released_reservations", "Reservations that never became holds"),
            ),
        )
    )
    return registry


def sealer_metrics(sealer: Sealer) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        ReadCounters(
            lambda: (sealer.sealed_events, sealer.checkpoints_written),
            (
                ("pryv_sealer_events", "Events this sealer hashed into the tree"),
                ("pryv_sealer_checkpoints", "Checkpoints this sealer signed"),
            ),
        )
    )
    registry.register(
        ReadGauges(
            lambda: (sealer.tree_size, sealer.refused[0] if sealer.refused else 0),
            (
                ("pryv_sealer_tree_size", "Events in the sealed tree"),
                (
                    "pryv_sealer_refused_event",
                    "Notification id of the event sealing stopped at (no valid evidence); 0: none",
                ),
            ),
        )
    )
    return registry
