"""Golden trace: the exact records of a few fixed runs, pinned by SHA-256.

Any change in behaviour, down to the last bit of one timestamp, changes a digest and fails
here; a change meant to alter behaviour updates ``tests/golden/trace.json`` in the same
commit (``pytest tests/test_golden_trace.py --update-golden``), so the change is visible
and deliberate in review. The digests hash each column's raw bytes (name, dtype, values),
not a text rendering, so they do not depend on how pandas formats floats.

Cases: ``scenarios/quick.yaml`` under every built-in policy, the Henan flood scenario (a
surge: extra agents, shut stations, slow roads) and a stress case for ties in the event
queue (calls on a half-hour grid, zero drive distances, zero patience).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.fingerprint import ties_case
from sim.experiments.runs.run import ReplicationResult, run_replication
from sim.model.call_rows import CallRows
from sim.model.dispatch import REGISTRY
from sim.model.loading import load_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden" / "trace.json"


def table_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's columns: names, dtypes and raw values, in column order."""
    digest = hashlib.sha256()
    digest.update(repr(len(frame)).encode())
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}:{column.dtype}".encode())
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
        else:  # categories, strings, nullable booleans: their text, missing as <NA>
            digest.update("\x1f".join(map(str, column.tolist())).encode())
    return digest.hexdigest()


def _ties_case() -> ReplicationResult:
    scenario, network, stream = ties_case()
    return run_replication(scenario, 0, "nearest_idle_van", network=network, stream=stream)


def _run_case(case: str) -> ReplicationResult:
    if case.startswith("quick/"):
        policy = case.split("/", 1)[1]
        return run_replication(load_scenario(ROOT / "scenarios" / "quick.yaml"), 0, policy)
    if case == "henan_flood_2021":
        return run_replication(load_scenario(ROOT / "scenarios" / "henan_flood_2021.yaml"), 0)
    if case == "ties":
        return _ties_case()
    raise KeyError(case)


CASES = [f"quick/{policy}" for policy in sorted(REGISTRY)] + ["henan_flood_2021", "ties"]


def _expected() -> dict[str, dict[str, str]]:
    if not GOLDEN.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("case", CASES)
def test_records_match_the_golden_trace(case: str, request: pytest.FixtureRequest) -> None:
    result = _run_case(case)
    got = {"calls": table_digest(result.calls), "units": table_digest(result.units)}
    if request.config.getoption("--update-golden"):
        golden = _expected()
        golden[case] = got
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return
    expected = _expected().get(case)
    assert expected is not None, f"no golden digest for {case}: run with --update-golden"
    assert got == expected, (
        f"{case}: records changed (calls {got['calls'][:12]} vs {expected['calls'][:12]}, "
        f"units {got['units'][:12]} vs {expected['units'][:12]}); if the change is meant, "
        "update with pytest tests/test_golden_trace.py --update-golden"
    )


def test_digest_sees_one_ulp() -> None:
    frame = pd.DataFrame({"t_h": [1.0, 2.0], "state": ["a", "b"]})
    nudged = frame.copy()
    nudged.loc[1, "t_h"] = np.nextafter(2.0, 3.0)
    assert table_digest(frame) == table_digest(frame.copy())
    assert table_digest(frame) != table_digest(nudged)


@pytest.mark.parametrize("case", ["quick/nearest_station_with_backup", "henan_flood_2021"])
def test_stream_rows_read_in_small_blocks_give_the_golden_trace(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model packs the stream values a call reads a block of calls at a time.

    With blocks of 7 calls a run crosses hundreds of block edges (a golden run has fewer
    calls than one block of the usual size): the records must be the golden ones still.
    """
    monkeypatch.setattr(CallRows, "CALLS", 7)
    result = _run_case(case)
    assert len(result.calls) > 10 * CallRows.CALLS
    expected = _expected()[case]
    assert {"calls": table_digest(result.calls), "units": table_digest(result.units)} == expected
