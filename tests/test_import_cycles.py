"""No import cycles in ``sim``: a cycle makes the import order matter and hides which layer
depends on which.  Imports inside functions count too (they only postpone a cycle);
imports under ``if TYPE_CHECKING:`` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "sim").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The sim modules ``name`` imports anywhere but under ``if TYPE_CHECKING:``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target not in ("sim", name):
            found.add(target)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            resolve(base)
            for alias in node.names:
                resolve(f"{base}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    """Against a made-up graph: a -> b -> c -> a is one cycle, d -> a is not in it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_in_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sim.engine import Model\n"
        "def f():\n    from sim.result import Result\n"
    )
    known = {"sim.engine": source, "sim.result": source, "sim.m": source}
    assert imports("sim.m", source, known) == {"sim.result"}


def test_sim_has_no_import_cycle() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert "sim.result" in graph["sim.engine"]  # the graph is really built
    assert cycles(graph) == []


def test_the_configuration_does_not_import_the_model() -> None:
    """``sim.config`` reads and checks scenarios; the model that runs them depends on it,
    never the reverse (imports under ``TYPE_CHECKING`` aside)."""
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    reached: set[str] = set()
    todo = [name for name in known if name.startswith("sim.config")]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert {"sim.config.types", "sim.config.load", "sim.ports.linux"} <= reached
    model = {
        "sim.engine",
        "sim.host",
        "sim.channel",
        "sim.sockets",
        "sim.recorder",
        "sim.result",
        "sim.workload.flow",
        "sim.workload.keepalive",
        "sim.workload.lifetimes",
        "sim.workload.destinations",
        "sim.workload.retry",
    }
    assert sorted(reached & model) == []
