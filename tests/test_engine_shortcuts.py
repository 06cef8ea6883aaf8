"""The model's shortcuts around simpy's machinery behave as the machinery would.

sim/model/simulation.py builds timeouts without Timeout.__init__ for speed, relying on simpy's
internals; a test here fails if a simpy release changes what env.timeout schedules.
Calls are generators that resume themselves instead of simpy processes; the tests here
check that every call ends, leaves no garbage behind, and that calls at time zero start
as processes would.
"""

from __future__ import annotations

import dataclasses
import gc
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import simpy

from sim.model.demand import draw_call_stream
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.records import ABANDONED, REMOTE, REPAIRED
from sim.model.simulation import Model, _timeout_maker

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
QUICK = SCENARIOS / "quick.yaml"
# One van with all the calls: the contractor_overflow policy hands many jobs to shops.
OVERLOADED = SCENARIOS / "overloaded_neighbour.yaml"


def _scheduled(env: simpy.Environment) -> list[tuple[float, int, int, str]]:
    return [(t, prio, eid, type(ev).__name__) for t, prio, eid, ev in sorted(env._queue)]


def test_shortcut_timeout_matches_env_timeout() -> None:
    plain, fast = simpy.Environment(initial_time=2.5), simpy.Environment(initial_time=2.5)
    make = _timeout_maker(fast)
    for delay in (0.0, 1.25, 3.0):
        a = plain.timeout(delay)
        b = make(delay)
        assert type(a) is type(b)
        assert {**vars(a), "env": None} == {**vars(b), "env": None}
        assert b.env is fast
    assert _scheduled(plain) == _scheduled(fast)
    # Both run the same way: callbacks fire at the same times with the same values.
    seen: dict[str, list[float]] = {"plain": [], "fast": []}

    def note(name: str, env: simpy.Environment, _: simpy.Event) -> None:
        seen[name].append(env.now)

    for name, env in (("plain", plain), ("fast", fast)):
        for _, _, _, event in list(env._queue):
            event.callbacks.append(partial(note, name, env))
        env.run()
    assert seen["plain"] == seen["fast"] == [2.5, 3.75, 5.5]


def _model(
    days: float, zero_calls: int = 0, policy: str = "nearest_station", path: Path = QUICK
) -> Model:
    scenario = load_scenario(path).with_overrides(
        horizon={"days": days, "warmup_days": 0}, dispatch={"policy": policy}
    )
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    if zero_calls:
        t_call = np.array(stream.t_call_h, copy=True)
        t_call[:zero_calls] = 0.0
        stream = dataclasses.replace(stream, t_call_h=t_call)
    return Model(scenario, network, stream)


def _live_calls() -> int:
    return sum(
        1
        for obj in gc.get_objects()
        if isinstance(obj, types.GeneratorType) and obj.gi_code is Model._call.__code__
    )


@pytest.mark.parametrize("policy", ["nearest_station", "contractor_overflow"])
def test_finished_calls_leave_no_reference_cycles(policy: str) -> None:
    """A call drops its own resume callback at every end, so it is freed at once.

    Were a `del resume` forgotten, each call ending there would stay alive in a reference
    cycle until the garbage collector found it: the collection below would free it.
    """
    path, days = (OVERLOADED, 5) if policy == "contractor_overflow" else (QUICK, 2)
    model = _model(days=days, policy=policy, path=path)
    gc.collect()
    gc.disable()
    try:
        model.run()
        # The model stays alive, and with it every call still under way at the horizon.
        alive = _live_calls()
        gc.collect()
        assert _live_calls() == alive
    finally:
        gc.enable()
    assert 0 < alive < 100  # only the calls under way at the horizon
    assert len(model.records.attempts) > 50  # of a run with real content
    if policy == "contractor_overflow":
        assert np.asarray(model.records.contractor).any()  # the contractor's end is reached


def test_every_call_ends_in_one_of_the_final_states() -> None:
    """Each end of a call (abandoned, remote, repaired on site or in a workshop) is reached."""
    model = _model(days=4).run()
    records = model.finalize()
    states = np.asarray(records.final_state)
    finished = states[np.isfinite(records.repaired_h) | np.isfinite(records.abandoned_h)]
    assert set(np.unique(finished)) == {ABANDONED, REMOTE, REPAIRED}
    assert np.asarray(records.towed).any() and np.isfinite(records.workshop_start_h).any()


def test_calls_at_time_zero_start_first_and_run_to_the_end() -> None:
    """Calls at time zero are started by urgent events, after the model's processes."""
    model = _model(days=2, zero_calls=3)
    started = model.env._eid
    model.start()
    # The shift process, then the three calls, each from an urgent initialisation event.
    queued = sorted(model.env._queue)
    assert [(t, priority) for t, priority, _, _ in queued[:4]] == [(0.0, 0)] * 4
    assert next(started) == 4 + 1  # nothing else was scheduled before the calls' events
    model.run()
    records = model.finalize()
    assert records.answered_h[0] == 0.0  # the first caller gets an agent at once
    assert all(attempts >= 1 for attempts in records.attempts[:3])
    assert all(np.isfinite(records.repaired_h[:3]) | np.isfinite(records.abandoned_h[:3]))
