"""The package's shape: imports run one way between sub-packages, no module imports another in a
cycle, no code outside the registry chooses behaviour by a model's name or class, no function is
longer than two screens, and the architecture page's layout names every sub-package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "etude"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

# Lower layers never import higher ones; a layer may import itself and anything below.
LAYERS = [
    {"etude"},  # errors, config, paths, runtime
    {"data", "audio", "robot"},
    {"models"},
    {"generation"},
    {"evaluation"},
    {"training"},
    {"study", "perform"},
    {"studio"},
    {"cli", "__main__"},
]
RANK = {name: k for k, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The sub-package (or top-level module like cli) a module belongs to; 'etude' for the base."""
    parts = module.split(".")
    if len(parts) == 1:
        return "etude"
    name = parts[1]
    return name if (SRC / name).is_dir() or name in ("cli", "__main__") else "etude"


def _imports(path: Path) -> set[str]:
    """Every etude module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("etude"):
            for alias in node.names:  # `from etude.data import store` imports etude.data.store
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (SRC.parent / (sub.replace(".", "/") + ".py")).exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("etude")}
    return found


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}
GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def test_every_sub_package_has_a_layer_and_a_docstring():
    for pkg in sorted(p.parent for p in SRC.glob("*/__init__.py")):
        assert pkg.name in RANK, f"{pkg.name} is in no layer of this test"
        doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 12, f"etude.{pkg.name} needs a docstring saying what it owns"


def test_imports_run_one_way():
    upward = [
        f"{m} ({_part(m)}) imports {target} ({_part(target)})"
        for m, targets in GRAPH.items()
        for target in targets
        if RANK[_part(target)] > RANK[_part(m)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(GRAPH.get(m, ())):
            n = n if n in MODULES else n.rsplit(".", 1)[0] if n.rsplit(".", 1)[0] in MODULES else n
            if state.get(n) == 1:
                return path + [n]
            if n in MODULES and not state.get(n) and (cycle := visit(n, path + [n])):
                return cycle
        state[m] = 2
        return None

    for m in MODULES:
        if not state.get(m):
            cycle = visit(m, [m])
            assert cycle is None, " -> ".join(cycle)


# Choosing behaviour by a model's name or class belongs to the registry (and config's checks).
NAME_CHECKS = re.compile(
    r"model\.name\s*(==|!=|in\b)|\"\w*rbm\w*\"\s+in\s+\w*model|isinstance\([^)]*(LSTMGenerator|RollModel|WindowRBM)"
)


@pytest.mark.parametrize("module", [m for m in MODULES if m not in ("etude.models.registry", "etude.config")])
def test_no_behaviour_by_model_name(module):
    hits = [line.strip() for line in MODULES[module].read_text().splitlines() if NAME_CHECKS.search(line)]
    assert not hits, f"{module}: {hits}"


def test_the_architecture_page_names_every_sub_package():
    text = ARCHITECTURE.read_text()
    layout = text[text.index("## Layout") :]
    layout = layout.split("\n## ")[0]  # up to the next section, if any
    for pkg in sorted(p.parent.name for p in SRC.glob("*/__init__.py")):
        assert re.search(rf"^\s*{pkg}/", layout, re.M), f"docs/architecture.md's layout does not show {pkg}/"


MAX_FUNCTION_LINES = 80  # a screen or two


def test_no_function_is_longer_than_two_screens():
    long = [
        f"{_module(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)
