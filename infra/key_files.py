"""Signing keys kept beside the embedded store: written once, owner-only, never overwritten.

Production passes keys in the environment (PRYV_SEALER_KEY, PRYV_OPERATOR_KEY); embedded mode
makes one on first use so a laptop install signs its checkpoints and operator actions too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_key_file(path: Path) -> str | None:
    if not path.exists():
        return None
    return path.read_text().strip() or None


def load_or_create_key_file(path: Path) -> str:
    """The hex private key in `path`, generated (0600) when there is none yet."""
    existing = read_key_file(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "0x" + secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return read_key_file(path) or key
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
