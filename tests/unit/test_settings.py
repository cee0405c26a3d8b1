"""Configuration: every PRYV_* variable read and checked in one place (infra.settings)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.settings import ConfigurationError, Settings, read_environment


def test_an_empty_environment_is_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PRYV_") or name == "PERSISTENCE_MODULE":
            monkeypatch.delenv(name)
    settings = read_environment().to_settings()
    # The embedded default gives a new wallet $5 of test credit (a first call needs no operator).
    assert settings.embedded and settings == Settings(welcome_credit_micros=5_000_000)


def test_welcome_credit_is_off_on_shared_databases_and_needs_the_operator_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("PRYV_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PRYV_DATABASE_URL", "postgresql://127.0.0.1/test")
    assert read_environment().to_settings().welcome_credit_micros == 0
    monkeypatch.setenv("PRYV_WELCOME_CREDIT_USD", "2.50")
    with pytest.raises(ConfigurationError, match="PRYV_OPERATOR_KEY"):
        read_environment().to_settings()
    monkeypatch.setenv("PRYV_OPERATOR_KEY", "0x" + "0e" * 32)
    assert read_environment().to_settings().welcome_credit_micros == 2_500_000


def test_variables_arrive_in_internal_units(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PRYV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PRYV_REVOCATION_WAIT_MS", "250")
    monkeypatch.setenv("PRYV_CHECKOUT_MIN_USD", "7")
    monkeypatch.setenv("PRYV_KEY_PEPPER", "ab" * 16)
    monkeypatch.setenv("PRYV_PUBLIC_URL", "https://api.example.com/")
    monkeypatch.setenv("PRYV_MODELS_FILE", "")  # empty is unset
    settings = Settings.from_env()
    assert settings.revocation_wait_seconds == 0.25
    assert settings.checkout_min_usd_micros == 7_000_000
    assert settings.key_pepper == bytes.fromhex("ab" * 16)
    assert settings.public_url == "https://api.example.com"
    assert settings.models_file is None
    assert not (tmp_path / "key_pepper").exists()  # a given pepper is never written


def test_embedded_mode_creates_its_pepper_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PRYV_KEY_PEPPER", raising=False)
    monkeypatch.setenv("PRYV_DATA_DIR", str(tmp_path))
    assert read_environment().to_settings().key_pepper == b""  # reading creates nothing
    first = Settings.from_env().key_pepper
    assert len(first) == 32 and Settings.from_env().key_pepper == first


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRYV_DATABASE_POOL_SIZE", "lots")
    monkeypatch.setenv("PRYV_LOG_FORMAT", "xml")
    monkeypatch.setenv("PRYV_PUBLIC_URL", "ftp://example.com")
    with pytest.raises(ConfigurationError) as bad:
        read_environment()
    message = str(bad.value)
    for name in ("PRYV_DATABASE_POOL_SIZE", "PRYV_LOG_FORMAT", "PRYV_PUBLIC_URL"):
        assert name in message


def test_secrets_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRYV_KEY_PEPPER", "not-hex-secret-value")
    with pytest.raises(ConfigurationError) as bad:
        read_environment()
    assert "PRYV_KEY_PEPPER" in str(bad.value)
    assert "not-hex-secret-value" not in str(bad.value)
    settings = Settings(key_pepper=b"pepper", stripe_secret_key="sk_live_secret")
    assert "pepper" not in repr(settings) and "sk_live_secret" not in repr(settings)


def test_the_cli_refuses_a_bad_configuration_with_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PRYV_DATA_DIR": str(tmp_path), "PRYV_HOLD_TTL_SECONDS": "soon"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "PRYV_HOLD_TTL_SECONDS" in done.stderr and "Traceback" not in done.stderr


def test_pryv_serve_names_the_origins_it_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configured URLs, the MCP resource and Stripe's return pages name this server."""
    import argparse

    from cli.main import _served_urls

    monkeypatch.delenv("PRYV_PUBLIC_URL", raising=False)
    monkeypatch.delenv("PRYV_MCP_PUBLIC_URL", raising=False)
    monkeypatch.delenv("PRYV_DASHBOARD_URL", raising=False)
    args = argparse.Namespace(
        host="0.0.0.0",
        port=9000,
        mcp_port=9001,
        mcp_host=None,
        dashboard_port=9002,
        dashboard_host=None,
    )
    served = _served_urls(Settings(), args)
    assert served.public_url == "http://127.0.0.1:9000"
    assert served.mcp_public_url == "http://127.0.0.1:9001"
    assert served.dashboard_url == "http://127.0.0.1:9002"  # checkout's way back
    monkeypatch.setenv("PRYV_PUBLIC_URL", "https://api.example.com")
    configured = _served_urls(Settings(public_url="https://api.example.com"), args)
    assert configured.public_url == "https://api.example.com"


def test_cors_origins_are_origins() -> None:
    from infra.settings import parse_origins

    assert parse_origins(" https://a.example/, http://localhost:3000 ") == (
        "https://a.example",
        "http://localhost:3000",
    )
    assert parse_origins("*") == ("*",) and parse_origins(None) == ()
    with pytest.raises(ConfigurationError, match="PRYV_CORS_ORIGINS"):
        parse_origins("https://a.example/path")


def test_alert_webhook_exceptions_are_ip_addresses() -> None:
    from infra.settings import ConfigurationError, parse_addresses

    assert parse_addresses(" 127.0.0.1, ::1 ") == ("127.0.0.1", "::1")
    assert parse_addresses(None) == ()
    with pytest.raises(ConfigurationError, match="not an IP address"):
        parse_addresses("localhost")
