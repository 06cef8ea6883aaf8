"""Regenerate ``henan_calls_trace.csv``: three days of calls as a call log records them.

    PYTHONPATH=. python scenarios/data/build_henan_trace.py

The calls of replication 0 of ``scenarios/quick.yaml`` over its first three days,
written as a trace (:func:`sim.model.trace.calls_as_trace`) from Monday 2026-01-05, then
shaped like a service's own log: times to the second, a call number, the columns named
as the log names them (``scenarios/trace_replay.yaml`` maps them).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from sim.experiments.runs.run import run_replication
from sim.model.loading import load_scenario, with_fields
from sim.model.trace import OBSERVED, calls_as_trace

HERE = Path(__file__).resolve().parent
OUT = HERE / "henan_calls_trace.csv"
QUICK = HERE.parent / "quick.yaml"
START = date(2026, 1, 5)
DAYS = 3


def main() -> None:
    scenario = with_fields(load_scenario(QUICK), {"horizon.days": DAYS})
    calls = run_replication(scenario, 0).calls
    trace = calls_as_trace(calls, START)
    for column in ("time", *OBSERVED):
        times = pd.to_datetime(trace[column].where(trace[column] != ""), format="ISO8601")
        trace[column] = times.dt.round("s").dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    trace[["lat", "lon"]] = trace[["lat", "lon"]].round(5)
    trace.insert(0, "call_no", [f"HN{START:%y%m%d}-{k:04d}" for k in range(len(trace))])
    names = {"time": "call_time", **{role: f"{role}_at" for role in OBSERVED}}
    trace.rename(columns=names).to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(trace)} calls)")


if __name__ == "__main__":
    main()
