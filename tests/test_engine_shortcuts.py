"""The contract of sim/model/engine.py: its shortcuts behave as SimPy's machinery would.

The engine builds timeouts without Timeout.__init__ for speed, relying on SimPy's
internals; a test here fails if a SimPy release changes what env.timeout schedules, or
how a process starts. Workshop bays are a lean simpy.Resource: checked event for event.
Calls are served by workers, generators that resume themselves, instead of a SimPy
process per call; the tests here check that every call ends, that workers serve call
after call and go with their model, and that calls at time zero start as processes
would. The model's work order, built without Order.__init__, is checked
against what Order.__init__ would build.
"""

from __future__ import annotations

import dataclasses
import gc
import types
from collections.abc import Generator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy

from sim.model.demand import draw_call_stream
from sim.model.dispatch import NearestStation, Order
from sim.model.engine import Bays, make_sleep, make_wait, new_timer, run_until, start_urgently
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.records import ABANDONED, REMOTE, REPAIRED
from sim.model.simulation import Model

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
QUICK = SCENARIOS / "quick.yaml"
# One van with all the calls: the contractor_overflow policy hands many jobs to shops.
OVERLOADED = SCENARIOS / "overloaded_neighbour.yaml"


def _scheduled(env: simpy.Environment) -> list[tuple[float, int, int, str]]:
    return [(t, prio, eid, type(ev).__name__) for t, prio, eid, ev in sorted(env._queue)]


def _busy_env() -> tuple[simpy.Environment, list[tuple[float, str]]]:
    """Processes, timeouts and events with ties at the stop times, noting what runs when."""
    env = simpy.Environment()
    log: list[tuple[float, str]] = []

    def ticker(name: str, step_h: float) -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(step_h)
            log.append((env.now, name))
            if name == "b":  # an event triggered now, processed after the ties due now
                done = env.event()
                done.callbacks.append(lambda _: log.append((env.now, "b's event")))
                done.succeed()

    for name, step_h in (("a", 0.5), ("b", 1.25), ("c", 2.5)):
        env.process(ticker(name, step_h))
    return env, log


def test_run_until_runs_what_env_run_runs() -> None:
    """Stopped and run on again (as advance() does), at times where events tie."""
    plain, plain_log = _busy_env()
    lean, lean_log = _busy_env()
    for until_h in (2.5, 5.0, 7.3, 10.0):
        plain.run(until=until_h)
        run_until(lean, until_h)
        assert lean.now == plain.now == until_h
        assert lean_log == plain_log
        assert _scheduled(lean) == _scheduled(plain)  # the same keys: ties stay in order
    assert len(plain_log) > 30
    with pytest.raises(ValueError, match="must be greater"):
        run_until(lean, 10.0)


def test_run_until_crashes_on_a_failed_event_as_env_run_does() -> None:
    errors = []
    for run in (lambda env: env.run(until=5.0), lambda env: run_until(env, 5.0)):
        env = simpy.Environment()
        env.timeout(1.0).callbacks.append(lambda _, env=env: env.event().fail(KeyError("x")))
        with pytest.raises(KeyError) as error:
            run(env)
        errors.append((env.now, error.value.args, type(error.value.__cause__)))
    assert errors[0] == errors[1] == (1.0, ("x",), KeyError)


def test_wait_schedules_what_env_timeout_schedules() -> None:
    plain, fast = simpy.Environment(initial_time=2.5), simpy.Environment(initial_time=2.5)
    wait = make_wait(fast)
    seen: dict[str, list[float]] = {"plain": [], "fast": []}

    def note(name: str, env: simpy.Environment, _: simpy.Event) -> None:
        seen[name].append(env.now)

    due = []
    # 0.1 + 0.2 is not 0.3 in floating point: the due time is the queue's key, to the bit.
    for delay in (0.0, 1.25, 3.0, 0.1, 0.2):
        plain.timeout(delay).callbacks.append(partial(note, "plain", plain))
        due.append(wait(delay, partial(note, "fast", fast)))
    made = [event for _, _, _, event in sorted(fast._queue)]
    for a, b in zip([event for _, _, _, event in sorted(plain._queue)], made, strict=True):
        assert type(a) is type(b) is simpy.Timeout
        assert {**vars(a), "env": None, "callbacks": None} == {
            **vars(b),
            "env": None,
            "callbacks": None,
        }
        assert b.env is fast and len(b.callbacks) == 1
    assert _scheduled(plain) == _scheduled(fast)
    # Both run the same way: callbacks fire at the same times, the times wait returned.
    for env in (plain, fast):
        env.run()
    assert seen["plain"] == seen["fast"] == sorted(due)
    assert seen["fast"] == [2.5, 2.5 + 0.1, 2.5 + 0.2, 3.75, 5.5]
    with pytest.raises(ValueError, match="Negative delay"):
        wait(-1.0, partial(note, "fast", fast))


def test_sleep_reschedules_a_call_timer_as_env_timeout_schedules() -> None:
    """A call's one timer, scheduled again for each wait, runs as a new timeout per wait."""
    plain, fast = simpy.Environment(initial_time=2.5), simpy.Environment(initial_time=2.5)
    sleep = make_sleep(fast)
    seen: dict[str, list[float]] = {"plain": [], "fast": []}

    def note(name: str, env: simpy.Environment, _: simpy.Event) -> None:
        seen[name].append(env.now)

    timer = new_timer(fast, partial(note, "fast", fast))
    due = []
    # One wait after the other, as a call waits; other events in between on both sides.
    for delay in (0.0, 1.25, 3.0, 0.1, 0.2):
        plain.timeout(delay).callbacks.append(partial(note, "plain", plain))
        plain.timeout(0.5 * delay)
        due.append(sleep(timer, delay))
        fast.timeout(0.5 * delay)
        assert [key[:3] for key in sorted(plain._queue)] == [key[:3] for key in sorted(fast._queue)]
        made = next(event for *_, event in fast._queue if event is timer)
        expected = next(event for *_, event in plain._queue if event.callbacks)
        assert {**vars(expected), "env": None, "callbacks": None} == {
            **{k: v for k, v in vars(made).items() if k != "again"},
            "env": None,
            "callbacks": None,
        }
        for env in (plain, fast):
            env.run()
        assert timer.callbacks is None  # as SimPy leaves an event it has processed
    assert seen["plain"] == seen["fast"] == due
    with pytest.raises(ValueError, match="Negative delay"):
        sleep(timer, -1.0)


def test_start_urgently_starts_as_a_process_starts() -> None:
    """An urgent start runs before normal events due at the same time, as Initialize does."""
    order: dict[str, list[str]] = {"plain": [], "fast": []}

    def note(log: list[str], what: str, _: simpy.Event) -> None:
        log.append(what)

    for name in order:
        env = simpy.Environment()
        log = order[name]
        env.timeout(0).callbacks.append(partial(note, log, "timeout"))
        if name == "plain":

            def process(
                log: list[str] = log, env: simpy.Environment = env
            ) -> Generator[simpy.Event, None, None]:
                log.append("started")
                yield env.timeout(0)

            env.process(process())
        else:
            start_urgently(env, partial(note, log, "started"))
        queued = sorted(env._queue)
        assert [(t, priority) for t, priority, _, _ in queued] == [(0.0, 0), (0.0, 1)]
        env.run()
    assert order["plain"] == order["fast"] == ["started", "timeout"]


def test_bays_grant_as_a_resource_does() -> None:
    """Same grants at the same times as simpy.Resource, requests and releases interleaved."""

    def trace(lean: bool) -> list[tuple[float, int, str]]:
        env = simpy.Environment()
        pool: Any = Bays(env, 2) if lean else simpy.Resource(env, capacity=2)
        log: list[tuple[float, int, str]] = []

        def job(k: int, arrive_h: float, hold_h: float) -> Generator[simpy.Event, Any, None]:
            yield env.timeout(arrive_h)
            request = pool.request()
            yield request
            log.append((env.now, k, "granted"))
            yield env.timeout(hold_h)
            if lean:
                pool.release()
            else:
                pool.release(request)
            log.append((env.now, k, "released"))

        # Ties on purpose: arrivals at the very time a bay is released.
        for k, (arrive, hold) in enumerate([(0, 2), (0, 1), (0, 3), (1, 1), (2, 2), (2, 0)]):
            env.process(job(k, arrive, hold))
        env.run()
        return log

    lean = trace(lean=True)
    assert lean == trace(lean=False)
    assert len(lean) == 12


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


def _live_workers() -> int:
    return sum(
        1
        for obj in gc.get_objects()
        if isinstance(obj, types.GeneratorType) and obj.gi_code is Model._serve_calls.__code__
    )


def _most_under_way(records: Any, t_call: np.ndarray, horizon_h: float) -> int:
    """The most calls under way at one moment, each from its ring to its end (or the horizon)."""
    end = np.fmin(np.fmin(records.repaired_h, records.abandoned_h), horizon_h)
    started = t_call < horizon_h
    moments = np.concatenate([t_call[started], end[started]])
    # At a tie the start counts first: an upper bound of the calls under way.
    steps = np.concatenate([np.ones(started.sum()), -np.ones(started.sum())])
    order = np.lexsort((-steps, moments))
    return int(np.cumsum(steps[order]).max())


@pytest.mark.parametrize("policy", ["nearest_station", "contractor_overflow"])
def test_workers_serve_call_after_call_and_go_with_their_model(policy: str) -> None:
    """A worker serves calls one after another: a run makes no more workers than calls
    were under way at once, far fewer than calls, and none outlives its model.

    Were a worker not handed back at one of a call's ends (abandoned, remote, repaired
    on site or in a workshop), every call ending there would make a new one.
    """
    path, days = (OVERLOADED, 5) if policy == "contractor_overflow" else (QUICK, 2)
    model = _model(days=days, policy=policy, path=path)
    gc.collect()
    before = _live_workers()
    model.run()
    made = _live_workers() - before
    records = model.finalize()
    t_call = np.asarray(model.stream.t_call_h)
    calls = int((t_call < model.horizon_h).sum())
    assert calls > 50  # a run with real content
    assert 0 < made <= _most_under_way(records, t_call, model.horizon_h) < calls
    if policy == "contractor_overflow":
        assert np.asarray(records.contractor).any()  # the contractor's end is reached
    else:
        assert (np.asarray(records.final_state) == ABANDONED).any()
        assert (np.asarray(records.final_state) == REMOTE).any()
    del model, records
    gc.collect()
    assert _live_workers() == before  # freed with the model (a worker is a cycle)


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


class _Recording(NearestStation):
    """nearest_station, noting every order's attributes as the policy first sees them."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def assign(self, order: Order, view: Any) -> Any:
        self.seen.append({name: getattr(order, name) for name in Order.__slots__})
        return super().assign(order, view)


def test_the_models_order_has_what_order_init_gives() -> None:
    """Every attribute Order.__init__ sets, with the value it would set, on the model's order.

    The model builds its orders without Order.__init__ (sim.model.simulation._CallOrder):
    a new attribute in Order.__init__ that the model does not set fails here.
    """
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 2, "warmup_days": 0})
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    policy = _Recording()
    model = Model(scenario, network, stream, policy).run()
    records = model.finalize()
    assert len(policy.seen) > 50
    # What Order.__init__ sets: every slot it fills on a real order.
    probe = Order(0, 1.0, 2.0, 3.0, 4.0, 0, 0, np.array([5, 6]), np.array([1.0, 2.0]), None)  # type: ignore[arg-type]
    set_by_init = {name for name in Order.__slots__ if hasattr(probe, name)}
    assert set_by_init == set(Order.__slots__)
    priorities = [s.priority for s in scenario.demand.segments]
    for seen in policy.seen:
        i = seen["call"]
        expected = Order(
            i,
            float(stream.lat[i]),
            float(stream.lon[i]),
            float(stream.t_call_h[i]),
            float(records.dispatched_h[i]),
            int(stream.segment[i]),
            priorities[stream.segment[i]],
            stream.candidates[i],
            stream.candidate_km[i],
            model.env.event(),
        )
        for name in set_by_init:
            got, want = seen[name], getattr(expected, name)
            if name == "event":
                assert isinstance(got, simpy.Event) and got.env is model.env
            elif name == "t_call_h":  # the clock at the call's start: the stream's time to an ulp
                assert got == pytest.approx(want, rel=1e-15, abs=0)
            elif isinstance(want, np.ndarray):
                assert np.array_equal(got, want), name
            else:
                assert type(got) is type(want) and got == want, name
