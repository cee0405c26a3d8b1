"""`pryv serve` as a user runs it: a child process on the embedded default with the ports given,
its start-up lines read until the PII models are ready."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.test_gateway_crash import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ServedPryv:
    api_port: int
    dashboard_port: int
    startup: list[str] = field(default_factory=list)  # stderr lines up to "PII models ready"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


@contextlib.contextmanager
def served_pryv(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[ServedPryv]:
    """`pryv serve --port A --dashboard-port B` on free ports, none of them the defaults, with
    no PRYV_* variable from this process but `env`'s."""
    served = ServedPryv(free_port(), free_port())
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PRYV_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    child_env["PRYV_DATA_DIR"] = str(data_dir)
    child_env.update(env or {})
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(served.api_port)]
    command += ["--dashboard-port", str(served.dashboard_port), "--log-level", "warning"]
    proc = subprocess.Popen(
        command,
        env=child_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 180  # a loaded 2-core box: imports and replay take a while
        while not any(line.startswith("PII models ready") for line in served.startup):
            assert time.monotonic() < deadline, served.startup
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"serve exited: {served.startup}"
            served.startup.append(line.strip())
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
