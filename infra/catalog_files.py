"""The model catalog and credit packs, read from TOML files (the packaged defaults live here)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.catalog import Catalog, parse_catalog
from domain.credit_packs import CreditPack, parse_packs

_HERE = Path(__file__).parent


def load_credit_packs(path: Path | None) -> tuple[CreditPack, ...]:
    """The credit packs from `path`, or the packaged default."""
    with (path or _HERE / "credit_packs.toml").open("rb") as handle:
        return parse_packs(tomllib.load(handle))


def load_catalog(path: Path | None) -> Catalog:
    """The model catalog from `path`, or the packaged default (the built-in echo model)."""
    with (path or _HERE / "models.toml").open("rb") as handle:
        return parse_catalog(tomllib.load(handle))
