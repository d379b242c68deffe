"""The package stays easy to live in: layers that import only downwards, no import cycle, short
functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compress", "analysis", "hydra_plugins")
LONGEST_FUNCTION = 40  # lines, signature and docstring included


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the ``if TYPE_CHECKING:`` blocks (annotations only, never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            lines |= set(range(node.lineno, node.end_lineno + 1))
    return lines


def _imports(module: str, path: Path) -> set[str]:
    """Project modules ``module`` imports anywhere in its code (inside functions too), except
    under ``if TYPE_CHECKING:``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    return {name for name in found if name in MODULES and name != module}


def test_layers_import_only_downwards():
    """The layers declared in pyproject.toml (``[tool.importlinter]``): entry points >
    pipeline > backends, tasks > recovery > methods > models > config > record, infra.
    In a process of its own: import-linter configures logging, which disabled the loggers of
    modules already imported (a later test of a logged warning then saw nothing)."""
    script = ("import sys; from importlinter.cli import lint_imports; "
              "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script, str(ROOT / "pyproject.toml")],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_no_import_cycle():
    graph = {module: _imports(module, path) for module, path in MODULES.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _long_functions() -> list[str]:
    long = []
    for module, path in MODULES.items():
        if not module.startswith("compress"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                reason = "long because" in (ast.get_docstring(node) or "").lower()
                if lines > LONGEST_FUNCTION and not reason:
                    long.append(f"{module}.{node.name}: {lines} lines")
    return long


def test_no_function_in_compress_is_long_without_saying_why():
    assert _long_functions() == []
