"""README's walk-through and first call, run as printed: its two shell blocks, one after the
other in one bash, on a fresh embedded store (a private HOME, so the per-user data dir is
new), against `pryv serve` on the documented port 8000."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Walk-through with curl", "## Calling the gateway")


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = []
    for title in SECTIONS:
        section = text[text.index(title) :]
        blocks.append(re.search(r"```sh\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    return blocks


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_readme_quickstart_runs_as_printed(tmp_path: Path) -> None:
    if not port_free(8000):
        pytest.fail("port 8000 (README's) is taken: the README run needs it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRYV_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = "set -euo pipefail\n" + "\n".join(readme_blocks())
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,  # h.txt and pryv.log land here; uv finds the project by --project
        env={**env, "UV_PROJECT": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the backgrounded `pryv serve` is in its group: killed below
    )
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}\nlog:\n{_log(tmp_path)}"
    answers = json_documents(out)  # curl prints no newline: documents run together
    listed = next(a for a in answers if a.get("object") == "list")
    assert listed["data"][0]["name"] == "Production key"
    revoked = next(a for a in answers if a.get("deleted") is True)
    assert revoked["status"] == "revoked"
    completion = next(a for a in answers if a.get("object") == "chat.completion")
    assert "Hello" in completion["choices"][0]["message"]["content"]
    assert (tmp_path / "data" / "pryv" / "events.sqlite").exists()  # the per-user data dir


def json_documents(text: str) -> list[dict[str, object]]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        try:
            doc, at = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return found


def _log(tmp_path: Path) -> str:
    log = tmp_path / "pryv.log"
    return log.read_text()[-3000:] if log.exists() else "(no pryv.log)"
