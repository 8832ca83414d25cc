"""The rooms of python_steps/beep and what each may import (docs/architecture.md holds the same table).

A room is a package or a top-level module of ``beep`` (``beep.evaluate``, ``beep.config``), except for the
modules :data:`MODULE_ROOMS` names. Every ``import`` of every module is read with :mod:`ast`, at the top
of the file AND inside functions (a deferred import is still a dependency), and:

* the rooms' import graph has no cycle (a cycle between two rooms means neither can be understood,
  tested or moved without the other);
* a room imports only rooms of its own layer or lower ones in :data:`LAYERS`: low-level rooms (config,
  db, labels, rules, llm, providers, ...) import no higher one; ``commands`` and ``cli`` are on top, and
  nothing but ``cli`` imports ``commands``.

Reading ~150 files with ``ast`` takes well under a second; nothing is imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python_steps" / "beep"

#: Layers, lowest first: a room may import rooms of its own layer or of lower ones, never of a higher
#: layer (and, by the cycle test, never in a circle). The same table, with what each room is for, is in
#: docs/architecture.md.
LAYERS: tuple[tuple[str, ...], ...] = (
    # 0. facts and helpers: settings, paths, checksums, token counts, the provider registry, table docs
    ("checksums", "config", "interrupts", "progress", "providers", "tokens", "table_docs", "sample"),
    # 1. infrastructure: DuckDB and its migrations, dbt, locks, the LLM client, labels and export facts,
    #    the dataset rules and vars, which day files a build read
    ("migrations", "db", "worker", "dbt_forkserver", "dbt_runner", "dbt_vars", "locks", "llm", "labels", "rules",
     "day_files"),
    # 2. the steps that make the dataset, refine it, export it; the responder ranker; what old runs leave, pruned
    ("ingest", "spark_dataset", "build", "refine", "export", "ranker", "prune"),
    # 3. fine-tuning (local ranker / label model, LoRA, remote jobs)
    ("finetune",),
    # 4. trained models asked for predictions (local, hf, OpenAI-compatible)
    ("predictors",),
    # 5. live prediction: a conversation in progress -> a prompt -> a prediction (beep predict, the app)
    ("live",),
    # 6. the Slack app
    ("slack",),
    # 7. evaluation runs, metrics, the alert replay (it replays the Slack app's policy), the report
    ("evaluate",),
    # 8. the whole chain (beep run)
    ("pipeline",),
    # 9. the command line: commands, then cli on top
    ("commands",),
    ("cli",),
)

#: Modules that form a room of their own although they sit in another package's folder (none today:
#: live prediction moved from evaluate/ to its own package, beep/live/).
MODULE_ROOMS: dict[str, str] = {}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> str | None:
    """The room of a ``beep...`` module name (None for ``beep`` itself or a non-Beep module)."""
    for name, room in MODULE_ROOMS.items():
        if module == name or module.startswith(name + "."):
            return room
    parts = module.split(".")
    if parts[0] != "beep" or len(parts) < 2:
        return None
    return parts[1]


def imported_modules(path: Path, package_dir: Path = PACKAGE) -> list[tuple[str, int]]:
    """Every ``beep`` module ``path`` imports, anywhere in the file (functions included), with its line."""
    module = module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from beep import evaluate` imports the room beep.evaluate
            if target == "beep":
                out += [(f"beep.{alias.name}", node.lineno) for alias in node.names]
            else:
                out.append((target, node.lineno))
    return [(name, line) for name, line in out if name == "beep" or name.startswith("beep.")]


def room_edges(package: Path = PACKAGE) -> dict[tuple[str, str], list[str]]:
    """(importing room, imported room) -> where ("path:line"), for every import between two rooms."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        source = room_of(module_name(path, package))
        if source is None:
            continue
        for target_module, line in imported_modules(path, package):
            target = room_of(target_module)
            if target is not None and target != source:
                edges[(source, target)].append(f"{path.relative_to(package.parent)}:{line}")
    return dict(edges)


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one room (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of() -> dict[str, int]:
    return {room: i for i, layer in enumerate(LAYERS) for room in layer}


def rooms_on_disk(package: Path = PACKAGE) -> set[str]:
    rooms = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    rooms |= {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return rooms | set(MODULE_ROOMS.values())


@pytest.fixture(scope="module")
def edges() -> dict[tuple[str, str], list[str]]:
    """The tree's room edges, read once for the tests below."""
    return room_edges()


def test_no_cycle_between_rooms(edges: dict[tuple[str, str], list[str]]) -> None:
    found = cycles(edges)
    detail = []
    for component in found:
        members = set(component)
        for (a, b), where in sorted(edges.items()):
            if a in members and b in members:
                detail.append(f"  {a} -> {b}: {', '.join(where[:3])}" + (" ..." if len(where) > 3 else ""))
    assert not found, "import cycles between rooms: " + "; ".join(" <-> ".join(c) for c in found) + "\n" + "\n".join(detail)


def test_every_room_has_a_layer() -> None:
    missing = sorted(rooms_on_disk() - set(layer_of()))
    assert not missing, (f"rooms without a layer: {missing}: add each to LAYERS here and to the table in "
                         "docs/architecture.md (what it is for, what it may import)")


def test_rooms_import_only_lower_layers(edges: dict[tuple[str, str], list[str]]) -> None:
    layers = layer_of()
    wrong = []
    for (a, b), where in sorted(edges.items()):
        if a in layers and b in layers and layers[b] > layers[a]:
            wrong.append(f"  {a} (layer {layers[a]}) imports {b} (layer {layers[b]}): {', '.join(where[:3])}")
    assert not wrong, "imports a room may not make (docs/architecture.md):\n" + "\n".join(wrong)


def test_only_cli_imports_commands(edges: dict[tuple[str, str], list[str]]) -> None:
    importers = sorted({a for (a, b) in edges if b == "commands" and a != "cli"})
    assert not importers, f"{importers} import beep.commands: only beep.cli may (commands are the top room)"


def test_the_check_sees_deferred_imports_and_cycles(tmp_path: Path) -> None:
    """The reader finds an import inside a function and reports the cycle it makes (the shape of the
    evaluate <-> finetune cycle this test was written against)."""
    pkg = tmp_path / "beep"
    for folder in ("alpha", "beta"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha" / "a.py").write_text("from beep.beta.b import thing\n")
    (pkg / "beta" / "b.py").write_text("def thing():\n    from ..alpha import a\n    return a\n")
    edges = room_edges(pkg)
    assert set(edges) == {("alpha", "beta"), ("beta", "alpha")}
    assert edges[("beta", "alpha")] == ["beep/beta/b.py:2"]
    assert cycles(edges) == [["alpha", "beta"]]


@pytest.mark.parametrize("module, room", [("beep.live.predict", "live"), ("beep.evaluate.api", "evaluate"),
                                          ("beep.config", "config"), ("beep", None), ("json", None)])
def test_room_of(module: str, room: str | None) -> None:
    assert room_of(module) == room
