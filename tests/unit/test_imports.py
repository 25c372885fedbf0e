"""The package's import graph, read with ``ast`` (nothing is imported): no cycles, ``media`` free of Airflow, S3,
the database and the rest of vodflow, and no two modules of one name in different packages without a reason.

Imports count when they run at import time or for the type checker: module level, including ``if
TYPE_CHECKING:`` blocks (a cycle hidden there is still two modules that need each other); imports inside a
function are not part of the graph. ``from x import y`` where ``y`` is a submodule is an edge to ``x.y``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "include" / "vodflow"

# Cycles another change removes; each line goes when that change is merged.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}  # a cycle allowed for a while: its modules, and why
# What media may import from the rest of vodflow.
MEDIA_MAY_IMPORT = {
    "vodflow.errors": "the project's one exception root: media raises BadInput / MediaToolError under it",
    "vodflow.codec": "the one dataclass <-> dict codec (a standard-library leaf): media's records cross XCom with it",
    "vodflow.redact": "the one redaction of signed URLs (a standard-library leaf): process and probe logs use it",
}
MEDIA_FORBIDDEN = ("airflow", "boto3", "botocore", "aiobotocore", "sqlalchemy", "psycopg", "psycopg2")
# A file name used in two packages: either one module is the other's adapter (and says so in its first docstring
# line: "adapter of ``<the other>``"), or it is listed here with its reason.
ADAPTERS = {
    "vodflow.pipeline.outputs.cmaf": "vodflow.media.package.cmaf",
    "vodflow.pipeline.outputs.downloads": "vodflow.media.package.downloads",
    "vodflow.pipeline.outputs.storyboard": "vodflow.media.pictures.storyboard",
    "vodflow.pipeline.outputs.webm": "vodflow.media.package.webm",
    "vodflow.web.metrics": "vodflow.catalog.metrics",
}
ALLOWED_DUPLICATES = {
    "__init__.py": "every package has one",
    "watch.py": "vodflow/watch.py (the watchers' shared contract) and triggers/watch.py: owned by the watchers' change",
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module under ``root`` (the ``vodflow`` package)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_time_nodes(body: list[ast.stmt]):
    """Import statements that run when the module is imported (or type-checked): not those inside functions."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from _import_time_nodes([n for n in getattr(node, field, []) if isinstance(n, ast.AST)])


def imported_names(name: str, path: Path, known: set[str], *, everywhere: bool = False) -> set[str]:
    """Absolute names ``name`` imports (a submodule where ``from x import y`` names one). ``everywhere``: also the
    imports inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = ast.walk(tree) if everywhere else _import_time_nodes(tree.body)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    result = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            result.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                result.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return result


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    found = modules(root)
    return {name: {target for target in imported_names(name, path, set(found)) if target in found and target != name}
            for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[tuple[list[str], frozenset[str]]]:
    """Every strongly connected component of more than one module (Tarjan), with one cycle (a → … → a) in it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [(_cycle_in(component, edges), frozenset(component)) for component in components]


def _cycle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, for the failure message."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node] & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return sorted(component)


def test_no_import_cycles():
    found = [(cycle, members) for cycle, members in cycles(graph()) if members not in ALLOWED_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(
        f"{' → '.join(cycle)} (all of: {', '.join(sorted(members))})" for cycle, members in found)


def test_allowed_cycles_still_exist():
    """Once a listed cycle is gone, its line must go too (so it cannot come back unnoticed)."""
    present = {members for _, members in cycles(graph())}
    assert not set(ALLOWED_CYCLES) - present, "drop from ALLOWED_CYCLES: " + str(set(ALLOWED_CYCLES) - present)


def test_media_imports_only_media():
    found = modules()
    bad = []
    for name, path in found.items():
        if not name.startswith("vodflow.media"):
            continue
        for target in imported_names(name, path, set(found), everywhere=True):
            top = target.split(".")[0]
            outside = top == "vodflow" and not target.startswith("vodflow.media") and target not in MEDIA_MAY_IMPORT
            if outside or top in MEDIA_FORBIDDEN:
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_ambiguous_module_names():
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, path in modules().items():
        by_name[path.name].append(name)
    adapted = {frozenset(pair) for pair in ADAPTERS.items()}
    bad = [f"{file}: {', '.join(sorted(names))}" for file, names in sorted(by_name.items())
           if len(names) > 1 and file not in ALLOWED_DUPLICATES and frozenset(names) not in adapted]
    assert not bad, "modules of one name in different packages (rename one, or state an adapter):\n" + "\n".join(bad)


def test_adapters_say_so():
    found = modules()
    for adapter, adapted in ADAPTERS.items():
        docstring = ast.get_docstring(ast.parse(found[adapter].read_text())) or ""
        first_line = docstring.splitlines()[0] if docstring else ""
        assert f"adapter of ``{adapted.removeprefix('vodflow.')}``" in first_line, adapter
