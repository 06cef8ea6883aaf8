"""rescue-sim: a discrete-event model of a national roadside truck-rescue network."""

from sim.errors import PolicyError, ScenarioError, UserInputError
from sim.experiments.run import ReplicationResult, RunResult, run, run_replication
from sim.model.loading import load_scenario, parse_scenario
from sim.model.scenario import Scenario

__version__ = "0.1.0"

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
