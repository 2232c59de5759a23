"""The layer contract of docs/architecture.md, enforced on the source (every import, lazy ones too).

Data flows one way: core -> documents -> libraries -> facts -> control -> measure -> advise ->
present -> integrations -> cli. A module may import from its own layer and the layers below it,
never from a layer above; and no group of modules may import each other in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "blastune"

# Bottom to top. ``blastune.errors`` and the package root's lazy table belong to ``core``.
LAYERS = [
    "core",
    "documents",
    "libraries",
    "facts",
    "control",
    "measure",
    "advise",
    "present",
    "integrations",
    "cli",
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("errors", "__main__"):
        return None  # the package root (public API, lazy) and errors sit outside the stack
    return parts[1] if parts[1] in LAYERS else "?" + parts[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("blastune")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("blastune")
            and node.level == 0
        ):
            found.add(node.module)
            for a in node.names:  # ``from blastune.measure import ops`` imports a module
                candidate = f"{node.module}.{a.name}"
                if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or (
                    PACKAGE.parent / candidate.replace(".", "/")
                ).is_dir():
                    found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_layer():
    strays = sorted(m for m in graph() if (layer_of(m) or "").startswith("?"))
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


def test_no_module_imports_from_a_layer_above_it():
    bad = []
    for mod, deps in graph().items():
        mine = layer_of(mod)
        if mine is None:
            continue
        for dep in deps:
            theirs = layer_of(dep)
            if theirs is None or theirs.startswith("?"):
                continue
            if LAYERS.index(theirs) > LAYERS.index(mine):
                bad.append(f"{mod} ({mine}) imports {dep} ({theirs})")
    assert not bad, "layer contract broken:\n" + "\n".join(sorted(bad))


def _closest_module(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_no_import_cycles():
    g = graph()
    mods = set(g)
    edges = {
        m: {
            d
            for d in (_closest_module(x, mods) for x in deps)
            if d and d != m and not m.startswith(d + ".")
        }  # a module importing its own package's __init__
        for m, deps in g.items()
    }
    # package __init__ files that only re-export are edges too; a cycle through them still counts
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_violation():
    """The contract test must be able to fail: a fake upward import is caught."""
    assert LAYERS.index(layer_of("blastune.cli.info")) > LAYERS.index(
        layer_of("blastune.facts.cpu")
    )
    assert layer_of("blastune.facts.cpu") == "facts" and layer_of("blastune.errors") is None
    assert "blastune.facts.cpu" in imports(PACKAGE / "facts" / "info.py")
