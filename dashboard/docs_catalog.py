"""The Docs page's content, generated from the API itself rather than copied by hand.

- endpoints: the public API app's routes (those in its OpenAPI schema), with their docstrings;
  the wallet action each route demands is read from its handler's source (`WalletAction.X`);
- errors: every `(status, "code", message)` the API's code can raise, found by walking the
  syntax trees of api/, gateway/, privacy/, commands/ and the wallet-message checks
  (ApiError(...), PryvError(..., code=, kind=), PryvError subclasses, the refusal table,
  WalletAuthError(WalletAuthCode.X, ...));
- PII: the entity types, defaults, modes and configuration the request schemas accept.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

from fastapi import FastAPI

import api
import commands
import domain.wallet_messages as wallet_messages
import gateway
import infra.wallet_signatures as wallet_signatures
import privacy
import privacy.controls as privacy_controls
from api.errors import ERROR_TYPES, KIND_STATUS
from domain.errors import ErrorKind
from domain.wallet_messages import MESSAGE_PREFIX, TIMESTAMP_WINDOW, WalletAction
from gateway.accounts import PrivacyDefaults
from gateway.chat_request import REQUEST_ALIASES
from infra.pii_text import DEFAULT_ENTITIES

_ACTION = re.compile(r"WalletAction\.([A-Z_]+)")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,63}$")


def _handlers() -> dict[tuple[str, str], str]:
    """(METHOD, full path) -> the handler's source, for every `@router.<method>(path)` in api/,
    with the module's `APIRouter(prefix=...)`."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted(Path(api.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        prefix = ""
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "APIRouter":
                for keyword in node.keywords:
                    if keyword.arg == "prefix" and isinstance(keyword.value, ast.Constant):
                        prefix = str(keyword.value.value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                ):
                    method = decorator.func.attr.upper()
                    route = re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + str(decorator.args[0].value))
                    out[(method, route)] = ast.unparse(node)
    return out


def _auth(path: str, source: str) -> tuple[str, str | None]:
    """(auth kind, wallet action) for one route."""
    action = _ACTION.search(source)
    if action:
        return "Wallet", WalletAction[action.group(1)].value
    if path.startswith("/v1/"):
        return "Bearer", None
    if "verify_webhook" in source:
        return "Stripe-Signature", None
    return "Public", None


def endpoints(api_app: FastAPI) -> list[dict[str, Any]]:
    """The API's operations, from its OpenAPI document (health and metrics left out: those are
    operators' endpoints, docs/operations.md)."""
    handlers = _handlers()
    out = []
    for path, operations in api_app.openapi().get("paths", {}).items():
        if not path.startswith(("/v1/", "/api/v1/")):
            continue
        for method, operation in operations.items():
            source = handlers.get((method.upper(), path))
            auth, action = _auth(path, source or "")
            text = str(operation.get("description") or "").strip().split("\n\n")[0]
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "auth": auth,
                    "walletAction": action,
                    "summary": " ".join(text.split()) or operation.get("summary", ""),
                }
            )
    return out


def _text(node: ast.expr) -> str | None:
    """A message literal; f-string placeholders become '…'."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(v.value) if isinstance(v, ast.Constant) else "…" for v in node.values
        ).strip()
    return None


def _status_code(nodes: list[ast.expr]) -> tuple[int, str, str | None] | None:
    if len(nodes) < 2:
        return None
    status, code = nodes[0], nodes[1]
    if not (isinstance(status, ast.Constant) and type(status.value) is int):
        return None
    if not (isinstance(code, ast.Constant) and isinstance(code.value, str)):
        return None
    if not 400 <= status.value < 600 or not _CODE.match(code.value):
        return None
    return status.value, code.value, _text(nodes[2]) if len(nodes) > 2 else None


def _kind_status(node: ast.expr | None) -> int | None:
    """`ErrorKind.X` → its HTTP status (None: not a kind)."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ErrorKind"
        and node.attr in ErrorKind.__members__
    ):
        return KIND_STATUS[ErrorKind[node.attr]]
    return None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _pryv_error(node: ast.Call) -> tuple[int, str, str | None] | None:
    """`PryvError("message", code="x", kind=ErrorKind.Y)`: kind defaults to a 400."""
    code = _keyword(node, "code")
    if not (isinstance(code, ast.Constant) and isinstance(code.value, str)):
        return None
    status = _kind_status(_keyword(node, "kind")) or 400
    return status, code.value, _text(node.args[0]) if node.args else None


def _error_class(node: ast.ClassDef) -> tuple[int, str, str | None] | None:
    """`class X(PryvError): kind, code = ErrorKind.Y, "x"` (or `code = "x"`), with the
    message its `super().__init__("…")` passes."""
    status, code = 400, None
    for stmt in node.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target, value = stmt.targets[0], stmt.value
        pairs: dict[str, ast.expr] = {}
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            names = [getattr(t, "id", "") for t in target.elts]
            pairs = dict(zip(names, value.elts, strict=False))
        elif isinstance(target, ast.Name):
            pairs = {target.id: value}
        status = _kind_status(pairs.get("kind")) or status
        found = pairs.get("code")
        if isinstance(found, ast.Constant) and isinstance(found.value, str):
            code = found.value
    if code is None or not _CODE.match(code):
        return None
    message = None
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and getattr(inner.func, "attr", "") == "__init__":
            message = _text(inner.args[0]) if inner.args else None
            break
    return status, code, message


# The privacy pipeline's own constructors: name → (status, fixed code or None: first arg).
_HELPERS: dict[str, tuple[int, str | None]] = {
    "_invalid": (400, None),
    "_unavailable": (503, "pii_unavailable"),
}


def _helper_error(node: ast.Call, name: str) -> tuple[int, str, str | None] | None:
    status, fixed = _HELPERS[name]
    if not node.args:
        return None
    first = node.args[0]
    if fixed is not None:
        return status, fixed, _text(first)
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return status, first.value, _text(node.args[1]) if len(node.args) > 1 else None
    return None


def _table_row(node: ast.Tuple) -> tuple[int, str, str | None] | None:
    """(ErrorKind.X, "code", "message") or (status, "code", "message") rows."""
    if len(node.elts) < 2:
        return None
    status, code = _kind_status(node.elts[0]), node.elts[1]
    if status and isinstance(code, ast.Constant) and isinstance(code.value, str):
        return status, code.value, _text(node.elts[2]) if len(node.elts) > 2 else None
    return _status_code(node.elts)


def _raised(tree: ast.AST) -> Iterator[tuple[int, str, str | None]]:
    for node in ast.walk(tree):
        found: tuple[int, str, str | None] | None = None
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in ("ApiError", "error_body"):
                found = _status_code(node.args)
            elif name == "PryvError":
                found = _pryv_error(node)
            elif name in _HELPERS:
                found = _helper_error(node, name)
            elif name == "WalletAuthError" and node.args:
                code = node.args[0]
                if isinstance(code, ast.Attribute):
                    message = _text(node.args[1]) if len(node.args) > 1 else None
                    found = 403, code.attr, message
        elif isinstance(node, ast.ClassDef):
            found = _error_class(node)
        elif isinstance(node, ast.Tuple):
            found = _table_row(node)
        if found is not None:
            yield found


def _modules() -> list[Path]:
    """Every module a caller's error can come from: the doors, the pipeline, the commands."""
    files: list[Path] = []
    for package in (api, gateway, privacy, commands):
        files += sorted(Path(str(package.__file__)).parent.glob("*.py"))
    files += sorted((Path(str(api.__file__)).parents[1] / "mcp_server").glob("*.py"))
    extra: list[ModuleType] = [wallet_messages, wallet_signatures]
    return files + [Path(str(m.__file__)) for m in extra]


@cache
def error_codes() -> list[dict[str, Any]]:
    """Every error the API can answer, by status then code, with the first message seen."""
    seen: dict[tuple[int, str], str | None] = {}
    for path in _modules():
        for status, code, message in _raised(ast.parse(path.read_text())):
            if seen.get((status, code)) is None:
                seen[(status, code)] = message
    return [
        {
            "status": status,
            "type": ERROR_TYPES.get(status, "api_error"),
            "code": code,
            "message": message or "",
        }
        for (status, code), message in sorted(seen.items())
    ]


def _literal_options(model: type[Any], field: str) -> list[str]:
    annotation = model.model_fields[field].annotation
    return [str(v) for v in get_args(annotation)]


def privacy_options() -> dict[str, Any]:
    return {
        "entityTypes": sorted(privacy_controls.PII_ENTITY_TYPES),
        "defaultEntities": list(DEFAULT_ENTITIES),
        "modes": _literal_options(PrivacyDefaults, "mode"),
        "faceBlur": _literal_options(privacy_controls.FacesConfig, "blur"),
        "piiConfigDefaults": privacy_controls.PiiConfig().model_dump(),
        # The documented alternative spellings the chat request accepts (its own table).
        "aliases": dict(REQUEST_ALIASES),
    }


def docs_document(api_app: FastAPI, api_base_url: str, model_ids: list[str]) -> dict[str, Any]:
    return {
        "object": "docs",
        "apiBaseUrl": api_base_url,
        "exampleModel": model_ids[0] if model_ids else "pryv-echo",
        "walletMessage": {
            "format": f"{MESSAGE_PREFIX} | action=<action> | keyId=<key id or empty> "
            "| nonce=<nonce> | ts=<ISO 8601>",
            "actions": [a.value for a in WalletAction],
            "timestampWindowSeconds": int(TIMESTAMP_WINDOW.total_seconds()),
        },
        "endpoints": endpoints(api_app),
        "errors": error_codes(),
        "privacy": privacy_options(),
    }
