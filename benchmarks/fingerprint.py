"""Fingerprints of the model's output, to check that a speed-up changed no result.

    python -m benchmarks.fingerprint

Prints the SHA-256 of ``run_replication(scenario, 0).calls.to_csv()`` and of the units
table for: ``scenarios/quick.yaml``; the national scenario over 10 days; and a stress
case for ties in the event queue (replayed calls on a half-hour grid, zero scatter so
that vans drive zero distances, zero patience and redial delays, fixed handling times, a
surge starting on a whole hour). An optimisation must leave every line unchanged:
run this before and after, and compare.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.national import ROOT, national
from sim.experiments.runs.run import ReplicationResult, run_replication
from sim.model.demand import draw_call_stream
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.scenario import Scenario


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv().encode()).hexdigest()


def ties_case() -> tuple[Scenario, Any, Any]:
    """The stress case for ties in the event queue (module docstring); also a golden-trace case."""
    quick = load_scenario(ROOT / "scenarios" / "quick.yaml")
    data = quick.model_dump(by_alias=True)
    data["horizon"] = {"days": 3, "warmup_days": 0}
    data["demand"]["spatial"]["scatter_km"] = 0
    data["demand"]["fault_classes"][0]["repair_time_min"] = {"dist": "fixed", "value": 0}
    data["hotline"]["handling_time_min"] = {"dist": "fixed", "value": 15}
    data["hotline"]["patience_min"] = {"dist": "fixed", "value": 0}
    data["hotline"]["redial_delay_min"] = {"dist": "fixed", "value": 0}
    data["stations"]["turnout_day_min"] = {"dist": "fixed", "value": 0}
    data["stations"]["turnout_night_min"] = {"dist": "fixed", "value": 30}
    data["surges"] = [
        {
            "name": "flood",
            "region": {"center_lat": 34.75, "center_lon": 113.62, "radius_km": 150},
            "start_day": 1,
            "duration_h": 5,
            "demand_multiplier": 3.0,
            "speed_factor": 0.6,
            "stations_shut_fraction": 0.5,
            "extra_agents": 2,
        }
    ]
    scenario = Scenario.model_validate(data)
    network = build_network(scenario)
    drawn = draw_call_stream(scenario, network, 0)
    calls = pd.DataFrame(
        {"t_call_h": np.floor(drawn.t_call_h * 2) / 2, "lat": drawn.lat, "lon": drawn.lon}
    )
    return scenario, network, draw_call_stream(scenario, network, 0, calls=calls)


def main() -> None:
    results: dict[str, ReplicationResult] = {
        "quick": run_replication(load_scenario(ROOT / "scenarios" / "quick.yaml"), 0),
        "national_10d": run_replication(
            national(10).with_overrides(horizon={"days": 10, "warmup_days": 1}), 0
        ),
    }
    scenario, network, stream = ties_case()
    for policy in ("nearest_station", "nearest_idle_van"):
        results[f"ties_{policy}"] = run_replication(
            scenario, 0, policy, network=network, stream=stream
        )
    for name, result in results.items():
        print(f"{name:<24} calls {_digest(result.calls)}")
        print(f"{'':<24} units {_digest(result.units)}")


if __name__ == "__main__":
    main()
