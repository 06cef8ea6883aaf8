"""What a process does NOT import: the fixed cost every command and worker pays.

Each case runs in a fresh interpreter and reads its ``sys.modules`` at the end; no timing
is asserted (speed lives in benchmarks/latency.py), only which heavy modules were loaded.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "MODULES "

# Run a command line as the rescue-sim script does, then list the modules it loaded.
CLI = """
import json, sys
from sim.cli import main
sys.argv = ["rescue-sim", *json.loads(sys.argv[1])]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print("MODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# One replication in this process, as a worker of `rescue-sim run --workers N` runs one.
WORKER = """
import json, sys
from sim.experiments.runs.run import run_replication
from sim.model.loading import load_scenario
result = run_replication(load_scenario("scenarios/quick.yaml"), 0)
assert len(result.calls) > 0
print("MODULES " + json.dumps({"code": 0, "modules": sorted(sys.modules)}))
"""

IMPORT_SIM = """
import json, sys
import sim
print("MODULES " + json.dumps({"code": 0, "modules": sorted(sys.modules)}))
"""

PLOTTING = ("matplotlib", "sim.outputs.plots", "sim.outputs.report")
LAYERS = ("sim.model", "sim.analysis", "sim.experiments", "sim.outputs")


def _loaded(script: str, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith(MARK))
    report = json.loads(line[len(MARK) :])
    assert report["code"] == 0, done.stdout + done.stderr
    return set(report["modules"])


def _heavy(loaded: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` (or below them) that were loaded."""
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in packages))


def test_import_sim_loads_no_layer_and_no_library() -> None:
    loaded = _loaded(IMPORT_SIM)
    heavy = ("numpy", "pandas", "scipy", "pydantic", "simpy", *PLOTTING, *LAYERS)
    assert _heavy(loaded, heavy) == []


def test_public_names_still_import_from_sim() -> None:
    script = IMPORT_SIM.replace(
        "import sim\n",
        "import sim\nfrom sim import Scenario, load_scenario, run, run_replication\n"
        "assert run.__module__ == 'sim.experiments.runs.run' and Scenario.__name__ == 'Scenario'\n"
        "assert {'run', 'Scenario'} <= set(dir(sim))\n",
    )
    assert "sim.experiments.runs.run" in _loaded(script)


def test_help_loads_neither_the_model_nor_its_libraries() -> None:
    loaded = _loaded(CLI, json.dumps(["--help"]))
    heavy = ("numpy", "pandas", "scipy", "pydantic", "simpy", "ruamel", *PLOTTING, *LAYERS)
    assert _heavy(loaded, heavy) == []


@pytest.mark.parametrize("scenario", ["quick.yaml", "dongfeng_light_truck.yaml"])
def test_validate_loads_the_scenario_and_network_only(scenario: str) -> None:
    # The work estimate measures this build's cost per call once and caches it (a short
    # simulation); the first validate pays for that, every later one reads the cache.
    _loaded(CLI, json.dumps(["validate", f"scenarios/{scenario}"]))
    loaded = _loaded(CLI, json.dumps(["validate", f"scenarios/{scenario}"]))
    assert "sim.model.network" in loaded  # it did check the network
    assert "sim.experiments.runs.work_estimate" in loaded  # and estimated the work
    # Generated stations are never searched, so not even scipy.spatial is needed; the
    # areas and stations are arrays, so pandas (a third of the command's time) is not.
    heavy = ("pandas", "pyarrow", "scipy", "simpy", "sim.model.simulation", *PLOTTING)
    others = ("sim.analysis", "sim.experiments.runs.run", "sim.outputs")
    assert _heavy(loaded, (*heavy, *others)) == []


def test_a_replication_loads_no_plotting_and_no_scipy_stats() -> None:
    loaded = _loaded(WORKER)
    assert "sim.model.simulation" in loaded
    # quick.yaml scatters stations, so the network read the province outlines: with
    # numpy, not matplotlib's paths.
    assert "sim.model.outlines" in loaded
    assert _heavy(loaded, ("scipy.stats", *PLOTTING)) == []


def test_run_loads_no_plotting_and_no_scipy_stats() -> None:
    loaded = _loaded(CLI, json.dumps(["run", "scenarios/quick.yaml", "--replications", "2"]))
    assert "sim.analysis.kpis" in loaded  # the intervals were computed
    assert _heavy(loaded, ("scipy.stats", *PLOTTING)) == []


def test_plot_and_report_of_a_run_load_neither_scipy_nor_the_optimiser(tmp_path: Path) -> None:
    """Telling a run folder from an optimise, frontier or sensitivity folder imports none
    of their modules (the optimiser, SciPy): a run's figures and page need neither."""
    folder = tmp_path / "run"
    given = ["run", "scenarios/quick.yaml", "--days", "2", "--replications", "2"]
    _loaded(CLI, json.dumps([*given, "--out", str(folder)]))
    heavy = ("scipy", "sim.experiments.design", "sim.experiments.fitting")
    for command in (["plot", str(folder)], ["report", str(folder)]):
        loaded = _loaded(CLI, json.dumps(command))
        assert "sim.outputs.plots" in loaded  # it did draw
        assert _heavy(loaded, heavy) == [], command


def test_the_other_reports_are_told_by_their_modules_markers() -> None:
    from sim.cli.files import OTHER_REPORTS

    for marker, module, function in OTHER_REPORTS:
        imported = importlib.import_module(module)
        assert marker == imported.MARKER and callable(getattr(imported, function))
