"""The model's shortcut around simpy's Timeout constructor makes exactly env.timeout's event.

sim/model.py builds timeouts without Timeout.__init__ for speed, relying on simpy's
internals; this test fails if a simpy release changes what env.timeout schedules.
"""

from __future__ import annotations

import simpy

from sim.model import _timeout_maker


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
    for name, env in (("plain", plain), ("fast", fast)):
        for _, _, _, event in list(env._queue):
            event.callbacks.append(lambda ev, name=name, env=env: seen[name].append(env.now))
        env.run()
    assert seen["plain"] == seen["fast"] == [2.5, 3.75, 5.5]
