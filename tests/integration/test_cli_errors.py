"""Operator commands fail in one line with the right exit code: 3 when they cannot run (no
store where they look, an unreachable service), never a traceback, never a new empty store;
and the store is found by PRYV_DATA_DIR or the per-user data dir, not the current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import Settings, read_environment

ROOT = Path(__file__).resolve().parents[2]
WALLET = "0x" + "1" * 40


def pryv(*argv: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRYV_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_refuse_to_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for argv in (
        ("credits", "balance", "--wallet", WALLET),
        ("keys", "list", "--wallet", WALLET),
        ("credits", "grant", "--wallet", WALLET, "--usd", "1", "--reason", "t"),
        ("audit", "verify"),
    ):
        done = pryv(*argv, env={"PRYV_DATA_DIR": str(missing)})
        assert done.returncode == 3, (argv, done.stderr)
        assert "no Pryv store in" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not missing.exists()


def test_an_unreachable_service_is_one_line_and_exit_3(tmp_path: Path) -> None:
    env = {
        "PRYV_DATABASE_URL": "postgresql://127.0.0.1:1/nothing",
        "PRYV_REDIS_URL": "redis://127.0.0.1:1",
        "PRYV_NATS_URL": "nats://127.0.0.1:1",
        "PRYV_KEY_PEPPER": "00",
        "PRYV_DATA_DIR": str(tmp_path),
    }
    done = pryv("credits", "balance", "--wallet", WALLET, env=env)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("pryv: a backing service is unreachable")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_store_is_found_from_any_folder(tmp_path: Path) -> None:
    from bootstrap.platform import open_application

    data = tmp_path / "data"
    store = Settings(data_dir=data, key_pepper=b"")
    data.mkdir()
    (data / "key_pepper").write_text("ab" * 32)
    open_application(store).close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = pryv(
        "credits",
        "grant",
        "--wallet",
        WALLET,
        "--usd",
        "2",
        "--reason",
        "t",
        env={"PRYV_DATA_DIR": str(data)},
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    assert not (elsewhere / ".pryv").exists()


def test_without_pryv_data_dir_the_per_user_data_dir_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRYV_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert read_environment().to_settings().data_dir == tmp_path / "pryv"
