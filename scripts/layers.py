"""Import structure of src/veracity: cycles between modules and imports that run back up a floor.

Floors follow /work/shared/ARCHITECTURE.md (low to high); a module may import its own floor and those
below. Every import counts, also the lazy ones inside functions (they still tie the code
together), except those under ``if TYPE_CHECKING:``. Usage: ``python scripts/layers.py [-v]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "veracity"
FLOORS: dict[str, int] = {
    "errors": 0, "__init__": 0, "__main__": 0,
    "config": 1,
    "media": 2, "models": 2,
    "faces": 3,
    "detectors": 4,
    "provenance": 5, "fusion": 5,
    "report": 6,
    "pipeline": 7,
    "evaluation": 8,
    "service": 9,
    "web": 10,
    "train": 11,  # trainers: may import every stage; nothing in the runtime imports them
    "cli": 12, "server": 12,  # entry points and the composition root
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else "__init__"]


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, modules: set[str]) -> set[str]:
    """The veracity modules ``path`` imports (``from a import b`` counts ``a.b`` if a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != me and target.startswith("veracity"):
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    verbose = "-v" in sys.argv
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph = {m: imports(p, modules) for m, p in files.items()}
    # A package's __init__ re-exporting its children is not a cycle of the design.
    graph = {m: {d for d in deps if not (m.startswith(d + ".") and files[d].name == "__init__.py")}
             for m, deps in graph.items()}
    circles = cycles(graph)
    up = sorted((m, d) for m, deps in graph.items() for d in deps if floor(d) > floor(m))
    edges = sum(len(d) for d in graph.values())
    print(f"modules {len(modules)}  imports {edges}  cycles {len(circles)}  imports-up {len(up)}")
    for c in circles:
        print("  cycle:", " <-> ".join(c))
    if verbose or up:
        for m, d in up:
            print(f"  up: {m} (floor {floor(m)}) -> {d} (floor {floor(d)})")


if __name__ == "__main__":
    main()
