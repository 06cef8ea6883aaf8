"""rescue-sim: a discrete-event model of a national roadside truck-rescue network."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sim.errors import PolicyError, ScenarioError, UserInputError
from sim.version import __version__

if TYPE_CHECKING:
    from sim.experiments.runs.run import ReplicationResult, RunResult, run, run_replication
    from sim.model.loading import load_scenario, parse_scenario
    from sim.model.scenario import Scenario


# The public names that live in heavier modules, loaded on first use (PEP 562): every
# process imports this package first (the command line, each worker of a run), and
# most need only part of it; `rescue-sim --help` needs none of the model.
_LAZY = {
    "ReplicationResult": "sim.experiments.runs.run",
    "RunResult": "sim.experiments.runs.run",
    "run": "sim.experiments.runs.run",
    "run_replication": "sim.experiments.runs.run",
    "Scenario": "sim.model.scenario",
    "load_scenario": "sim.model.loading",
    "parse_scenario": "sim.model.loading",
}

__all__ = [
    "PolicyError",
    "ReplicationResult",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "UserInputError",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "run",
    "run_replication",
]


def __getattr__(name: str) -> Any:
    """A public name from its module, imported on first use and kept here after."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
