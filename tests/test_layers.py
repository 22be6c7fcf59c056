"""Issue 21: one direction of imports. rnnlab's packages are layers (docs/architecture.md);
a module imports only from lower layers and from its own package, never in a circle,
also inside functions (where imports are kept for start-up speed). And the habits that
keep the layers honest: modules of one purpose (not past ~400 lines), one module that
installs signal handlers, no private name of another rnnlab module used."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# the layers, lowest first: a module may import from its own layer's package and below
LAYERS = [
    ["rnnlab.console", "rnnlab.errors", "rnnlab.frameworks"],
    ["rnnlab.core", "rnnlab.proc"],
    ["rnnlab.config", "rnnlab.plots"],
    ["rnnlab.store"],
    ["rnnlab.jobs"],
    ["rnnlab.sweeps"],
    ["rnnlab.cli"],
    ["rnnlab.api", "hydra_plugins.rnnlab_sweeper", "hydra_plugins.rnnlab_launcher"],
    ["rnnlab"],
]
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts}


def unit(name: str) -> str:
    """The layer's unit a module belongs to: its package (``rnnlab.store``), or itself."""
    for layer in LAYERS:
        for u in sorted(layer, key=len, reverse=True):
            if name == u or name.startswith(u + "."):
                return u
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and docs/architecture.md")


def level(name: str) -> int:
    u = unit(name)
    return next(i for i, layer in enumerate(LAYERS) if u in layer)


def imports(path: Path, name: str, known: dict[str, Path]) -> list[tuple[int, str, str]]:
    """(line, imported rnnlab module, imported name or "") for every import in the file,
    at any depth (inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.append((node.lineno, a.name, ""))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for a in node.names:
                full = f"{base}.{a.name}"
                found.append((node.lineno, full if full in known else base, a.name))
    return [f for f in found if f[1] in known]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {n: {m for _, m, _ in imports(p, n, known)} - {n} for n, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(known: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in known.items():
        for line, target, _ in imports(path, name, known):
            if target == "rnnlab" and name != "rnnlab":
                continue  # the package itself (Python imports it first anyway)
            same_unit = unit(target) == unit(name)
            if not same_unit and level(target) >= level(name):
                rel = path.relative_to(SRC) if path.is_relative_to(SRC) else path
                bad.append(
                    f"{rel}:{line}: {name} (layer {level(name)}) imports {target} "
                    f"(layer {level(target)})"
                )
    return bad


def test_every_import_points_down_the_layers():
    assert upward(modules()) == []


def test_no_import_circles():
    assert cycles(graph()) == []


def test_the_contract_fails_on_an_upward_import(tmp_path, monkeypatch):
    # the check itself: an import of the CLI from the store is caught, inside a function
    known = modules()
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rnnlab.cli import app\n", encoding="utf-8")
    known["rnnlab.store.bad"] = bad
    assert any("rnnlab.store.bad (layer 3) imports rnnlab.cli.app" in b for b in upward(known))
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_module_has_one_purpose_and_a_readable_size(name):
    path = modules()[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)}: {lines} lines: split it"
    assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), (
        f"{name}: say its purpose"
    )


def test_one_module_installs_signal_handlers():
    where = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "signal"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "signal"
            ):
                where.add(name)
    assert where == {"rnnlab.proc.signals"}


def test_no_private_name_of_another_rnnlab_module_is_used():
    known = modules()
    bad = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = {}  # local name -> rnnlab module
        for line, target, imported in imports(path, name, known):
            if imported.startswith("_") and target != name:
                bad.append(f"{name}:{line}: imports {target}.{imported}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith(("rnnlab", "hydra_plugins"))
            ):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in known:
                        bound[a.asname or a.name] = full
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{name}:{node.lineno}: uses {bound[node.value.id]}.{node.attr}")
    assert bad == []


def test_the_commands_worker_imports_no_mlflow():
    # the rnnlab command's worker composes and computes while the process the user
    # started imports MLflow: what the worker imports for a job (its recorder is a
    # forwarder) must not pull MLflow in, or the two would no longer overlap
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import rnnlab.cli.app, rnnlab.cli.launcher\n"
        "from rnnlab.config import compose, to_container\n"
        "from rnnlab.jobs import runner, text\n"
        "cfg = compose(['plots=none', 'iterations=3'])\n"
        "job = runner.job_of(cfg, to_container(cfg), ['init=steady'], sys.argv[1],\n"
        "                    job=text.SweepJob.of(0, ['init=steady'], ['init']))\n"
        "job.spec(); runner.training_job(job)\n"
        "print(sorted(m for m in ('mlflow', 'sqlalchemy', 'matplotlib') if m in sys.modules))\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", code, tmp], capture_output=True, text=True, encoding="utf-8"
        )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[]"]
