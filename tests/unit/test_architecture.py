"""The package graph the docs draw (docs/architecture.md, "Layers"), checked by parsing imports:
no cycle between top-level packages, and each lower layer imports only what is below it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "domain",
    "projections",
    "commands",
    "infra",
    "bootstrap",
    "privacy",
    "gateway",
    "audit",
    "workers",
    "api",
    "dashboard",
    "mcp_server",
    "cli",
)
# Libraries that talk to the network, disks or processes: never in the pure layers.
IO_LIBRARIES = frozenset(
    {
        "asyncio",
        "httpx",
        "nats",
        "psycopg",
        "psycopg_pool",
        "redis",
        "sqlite3",
        "socket",
        "subprocess",
        "stripe",
        "fastapi",
        "starlette",
        "uvicorn",
        "presidio_analyzer",
        "pytesseract",
        "cv2",
        "pypdf",
        "os",
    }
)


def imported_modules(path: Path) -> Iterator[str]:
    """Every module `path` imports (top-level names and `from x import y` sources)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def package_imports(package: str) -> dict[str, set[str]]:
    """module path → the top-level names it imports."""
    return {
        str(path.relative_to(ROOT)): {name.split(".")[0] for name in imported_modules(path)}
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        used: set[str] = set()
        for names in package_imports(package).values():
            used |= names
        graph[package] = {name for name in used if name in PACKAGES and name != package}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in `graph` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_graph_has_no_cycle() -> None:
    assert find_cycle(package_graph()) is None


def test_find_cycle_reports_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_each_layer_imports_only_the_layers_below_it() -> None:
    graph = package_graph()
    assert graph["domain"] == set()
    assert graph["projections"] <= {"domain"}
    assert graph["commands"] <= {"domain", "projections"}
    assert graph["infra"] <= {"domain", "projections", "commands"}
    lower = ("domain", "projections", "commands", "infra", "bootstrap", "privacy", "gateway")
    for package in lower:  # the layers below the doors never import a door
        assert not graph[package] & {"api", "dashboard", "mcp_server", "cli"}, package
    assert graph["privacy"] <= {"domain", "projections", "commands", "infra", "bootstrap"}


def test_pure_layers_import_no_io_library() -> None:
    for package in ("domain", "projections"):
        for module, names in package_imports(package).items():
            assert not names & IO_LIBRARIES, f"{module} imports {sorted(names & IO_LIBRARIES)}"


def reads_environment(path: Path) -> bool:
    """`os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)` (setdefault, a write, is not
    a read of configuration)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) == ("os", "getenv")
        ):
            return True
        if isinstance(node, ast.Subscript) or (
            isinstance(node, ast.Attribute) and node.attr in ("get", "copy", "items")
        ):
            target = node.value
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "environ"
                and isinstance(target.value, ast.Name)
                and target.value.id == "os"
            ):
                return True
    return False


def test_only_the_settings_module_reads_the_environment() -> None:
    """Configuration is read and checked in one place (infra/settings.py)."""
    readers = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if reads_environment(path)
    ]
    assert readers == ["infra/settings.py"]


MONEY_MODULES = frozenset({"domain.topics", "domain.pricing", "domain.money", "domain.tokens"})
MONEY_SCALES = frozenset({100, 10_000, 1_000_000})  # cents per USD, micros per cent, per USD


def scaled_arithmetic(path: Path) -> list[int]:
    """Lines that multiply or divide by a money scale (cents, micros, per-million prices)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Mult | ast.Div | ast.FloorDiv | ast.Mod
        ):
            for side in (node.left, node.right):
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, int)
                    and side.value in MONEY_SCALES
                ):
                    lines.append(node.lineno)
    return lines


def test_api_holds_no_topics_prices_or_money_arithmetic() -> None:
    """The HTTP door parses, calls and shapes: event topics, prices and money conversions
    live below it (gateway/, commands/, domain/)."""
    for path in sorted((ROOT / "api").glob("*.py")):
        imported = set(imported_modules(path))
        assert not imported & MONEY_MODULES, f"{path.name} imports {imported & MONEY_MODULES}"
        assert not scaled_arithmetic(path), f"{path.name}:{scaled_arithmetic(path)}"


def test_scaled_arithmetic_is_found(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("cents = 5\nmicros = cents * 10_000\nms = 0.5 * 1000\n")
    assert scaled_arithmetic(sample) == [2]
