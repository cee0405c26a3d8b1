"""infra/compose.yaml runs every Pryv process beside the services, each with a command the CLI
accepts and settings Pryv knows (Docker is not needed to check that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cli.main import build_parser
from infra.settings import EnvironmentSettings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text())
    return loaded


def test_every_process_of_a_deployment_is_a_service() -> None:
    services = compose()["services"]
    commands = {name: s["command"][:2] for name, s in services.items() if "build" in s}
    assert set(commands) == {"api", "dashboard", "relay", "projector", "sweeper", "sealer"}
    assert commands["sealer"] == ["audit", "seal"]
    assert {"postgres", "redis", "nats"} <= set(services)
    assert "--processes" in services["api"]["command"]


def test_each_command_parses_and_each_variable_is_a_setting() -> None:
    parser = build_parser()
    known = {f"PRYV_{name.upper()}" for name in EnvironmentSettings.model_fields}
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        args = parser.parse_args(service["command"])  # SystemExit on an unknown flag
        assert callable(args.func), name
        assert set(service["environment"]) <= known, name
        if args.command in ("relay", "project", "sweep", "audit"):
            assert args.metrics_port, f"{name} serves no metrics"
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["pryv"]' in dockerfile and "tesseract-ocr" in dockerfile
