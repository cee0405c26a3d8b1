"""`pryv --help` (and each command's --help) loads only the CLI: none of the web stack, the
database and bus drivers, eth-account or the PII engine (checked on sys.modules, not on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "fastapi",
    "eth_account",
    "py_ecc",
    "presidio_analyzer",
    "spacy",
    "psycopg",
    "redis",
    "nats",
    "uvicorn",
    "stripe",
    "cv2",
    "pytesseract",
)

PROBE = f"""
import contextlib, io, json, sys
from cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    main(sys.argv[1:])
loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"help": out.getvalue(), "loaded": loaded}}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["keys", "--help"],
        ["audit", "verify", "--help"],
        ["finance", "--help"],
        ["projections", "rebuild", "--help"],
        ["serve", "--help"],
    ],
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["help"].startswith("usage: pryv")
    assert result["loaded"] == []
