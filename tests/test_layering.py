"""The layers of sim/ (docs/architecture.md): each imports only the layers below it.

errors < model < analysis < experiments < outputs < the CLI, the pytest plugin and the
package's own ``sim/__init__.py`` (the public facade). Every import counts: at the top
of a module, inside a function, or under ``if TYPE_CHECKING`` (an annotation is a
dependency too). The modules are read with :mod:`ast`, never imported, so a module
that only imports a higher layer inside a function is caught as well.
"""

from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sim"

# Lowest first. A module belongs to the longest prefix listed here.
LAYERS: dict[str, int] = {
    "sim.errors": 0,
    "sim.version": 0,
    "sim.model": 1,
    "sim.analysis": 2,
    "sim.experiments": 3,
    "sim.outputs": 4,
    "sim.cli": 5,
    "sim.pytest_plugin": 5,
    "sim.__main__": 5,
    "sim": 5,  # sim/__init__.py: the public facade, on top
}
LAYER_NAMES = {0: "errors", 1: "model", 2: "analysis", 3: "experiments", 4: "outputs", 5: "top"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module, within sim
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(package.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: set[str]) -> list[Import]:
    """Every import of a sim module in one file, wherever in the file it stands."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            # ``from sim.outputs import plots`` imports the module sim.outputs.plots.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "sim" or target.startswith("sim."):
                found.append(Import(name, _known(target, modules), node.lineno))
    return found


def _known(target: str, modules: set[str]) -> str:
    """The module itself, or its nearest package that exists (``sim.x.Name`` -> ``sim.x``)."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def layer(module: str) -> int:
    # "sim" is the facade module itself, not a prefix: a new sim/x.py must be placed.
    prefixes = [p for p in LAYERS if module == p or (p != "sim" and module.startswith(p + "."))]
    if not prefixes:
        raise KeyError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return LAYERS[max(prefixes, key=len)]


def import_graph(package: Path = PACKAGE) -> list[Import]:
    modules = all_modules(package)
    names = set(modules)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, names)]


def upward_imports(edges: list[Import]) -> list[str]:
    return [
        f"{e.source} (line {e.line}, {LAYER_NAMES[layer(e.source)]}) imports "
        f"{e.target} ({LAYER_NAMES[layer(e.target)]})"
        for e in edges
        if layer(e.target) > layer(e.source)
    ]


def find_cycle(edges: list[Import]) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.target != e.source:
            graph.setdefault(e.source, set()).add(e.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_every_module_is_in_a_layer() -> None:
    for name in all_modules():
        layer(name)
    with pytest.raises(KeyError, match="in no layer"):
        layer("sim.engine")  # a new top-level module has to be given its layer


def test_no_module_imports_a_layer_above_its_own() -> None:
    edges = import_graph()
    assert len(edges) > 50  # the walk found the imports at all
    assert upward_imports(edges) == []


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


# The checks themselves, on a small package written for the purpose: they must fail
# when the rules are broken (an import in a function, a relative import, a cycle).


@pytest.fixture
def bad_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    files = {
        "sim/__init__.py": "",
        "sim/errors.py": "",
        "sim/model/__init__.py": "",
        "sim/model/geo.py": "def f():\n    from sim.analysis import kpis\n",
        "sim/model/a.py": "from . import b\n",
        "sim/model/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from sim.model.a import X\n",
        "sim/analysis/__init__.py": "",
        "sim/analysis/kpis.py": "from ..model import a\nimport sim.errors\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / "sim"


def test_the_checks_catch_an_upward_import_and_a_cycle(bad_package: Path) -> None:
    edges = import_graph(bad_package)
    assert upward_imports(edges) == [
        "sim.model.geo (line 2, model) imports sim.analysis.kpis (analysis)"
    ]
    assert Import("sim.analysis.kpis", "sim.model.a", 1) in edges  # relative, resolved
    cycle = find_cycle(edges)
    assert cycle is not None and set(cycle) == {"sim.model.a", "sim.model.b"}


# Inside the experiments layer, the sub-packages by job: ``runs`` (the engine, the store,
# replications, sweeps) is the floor that ``design`` (the network optimiser) and ``fitting``
# (calibration, sensitivity) stand on; neither of those two imports the other, and nothing
# in ``runs`` imports either. ``sim.experiments.testing`` (regression helpers) sits on runs.
EXPERIMENT_PARTS: dict[str, int] = {
    "sim.experiments": 0,  # the package's own __init__
    "sim.experiments.runs": 0,
    "sim.experiments.design": 1,
    "sim.experiments.fitting": 1,
    "sim.experiments.testing": 1,
}


def experiment_part(module: str) -> str:
    prefixes = [p for p in EXPERIMENT_PARTS if module == p or module.startswith(p + ".")]
    if not prefixes:
        raise KeyError(f"{module} is in no part of sim.experiments: add it to EXPERIMENT_PARTS")
    return max(prefixes, key=len)


def crossing_imports(edges: list[Import]) -> list[str]:
    """Imports between experiment parts that go up, or sideways between two parts."""
    bad = []
    for e in edges:
        if not (e.source.startswith("sim.experiments.") and e.target.startswith("sim.experiments")):
            continue
        source, target = experiment_part(e.source), experiment_part(e.target)
        if source == target:
            continue
        if EXPERIMENT_PARTS[target] >= EXPERIMENT_PARTS[source]:
            bad.append(f"{e.source} (line {e.line}) imports {e.target}")
    return bad


def test_experiment_parts_import_only_the_runs_below_them() -> None:
    modules = [m for m in all_modules() if m.startswith("sim.experiments.")]
    assert {experiment_part(m) for m in modules} == set(EXPERIMENT_PARTS) - {"sim.experiments"}
    assert crossing_imports(import_graph()) == []


def test_the_parts_check_catches_a_sideways_import() -> None:
    edges = [
        Import("sim.experiments.fitting.calibrate", "sim.experiments.design.evaluation", 3),
        Import("sim.experiments.runs.engine", "sim.experiments.fitting.points", 7),
        Import("sim.experiments.design.optimise", "sim.experiments.runs.executor", 9),
    ]
    assert crossing_imports(edges) == [
        "sim.experiments.fitting.calibrate (line 3) imports sim.experiments.design.evaluation",
        "sim.experiments.runs.engine (line 7) imports sim.experiments.fitting.points",
    ]


# A module one can read through: beyond these a file wants splitting by job.
MAX_LINES = 850
MAX_CLI_LINES = 500


def test_no_module_outgrows_its_limit() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        cli = path.relative_to(PACKAGE).parts[0] == "cli"
        limit = MAX_CLI_LINES if cli else MAX_LINES
        if lines > limit:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines (at most {limit})")
    assert not too_long, "\n".join(too_long)
