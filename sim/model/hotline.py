"""The 24-hour hotline: agents on shifts, one FIFO queue, impatient callers.

Agents are counted, not modelled one by one. When the shift plan lowers the number on
duty, agents who are busy finish their call before they go, and nobody new is answered
until the busy count falls below the new level: the usual call-centre convention.

A caller who must wait gets an event that is triggered exactly once: with ``True`` when
an agent answers, or with ``False`` when the caller's patience runs out first.

Every change in the number on duty (shift changes, a surge's extra agents) is recorded
where it happens, in :meth:`Hotline.set_agents`: :attr:`Hotline.agents` is the step
function of agents on duty over the run, which agent utilisation and the figures read.
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque

import numpy as np
import pandas as pd
import simpy


class AgentsOnDuty:
    """Agents on duty over time: from ``t_h[k]`` until the next time, ``on_duty[k]`` agents."""

    __slots__ = ("on_duty", "t_h")

    def __init__(self, t_h: float, on_duty: int) -> None:
        self.t_h = array("d", [t_h])
        self.on_duty = array("q", [on_duty])

    def record(self, t_h: float, on_duty: int) -> None:
        """``on_duty`` agents from ``t_h`` on; a change at the time of the last one replaces it."""
        if on_duty == self.on_duty[-1]:
            return
        if t_h == self.t_h[-1]:
            self.on_duty[-1] = on_duty
            if len(self.on_duty) > 1 and self.on_duty[-2] == on_duty:
                del self.t_h[-1], self.on_duty[-1]
            return
        self.t_h.append(t_h)
        self.on_duty.append(on_duty)

    def to_frame(self) -> pd.DataFrame:
        """The table ``t_h``, ``agents_on_duty``: one row per change, the first at time 0."""
        return pd.DataFrame(
            {
                "t_h": np.array(self.t_h, dtype=np.float64),
                "agents_on_duty": np.array(self.on_duty, dtype=np.int64),
            }
        )


class _Waiting:
    __slots__ = ("event", "since_h")

    def __init__(self, event: simpy.Event, since_h: float) -> None:
        self.event = event
        self.since_h = since_h


class Hotline:
    """Counted agents with a time-varying number on duty, and a FIFO of waiting callers."""

    def __init__(
        self, env: simpy.Environment, agents_on_duty: int, prioritised: bool = False
    ) -> None:
        self.env = env
        self.on_duty = agents_on_duty
        self.agents = AgentsOnDuty(env.now, agents_on_duty)
        self.busy = 0
        self.prioritised = prioritised
        self._queue: deque[_Waiting] = deque()
        # With priorities, waiting callers sit in a heap of (priority, arrival number).
        self._heap: list[tuple[int, int, _Waiting]] = []
        self._arrivals = 0
        self._waiting = 0  # callers in the queue who have not hung up
        # Time integral of the number waiting, for Little's law.
        self.queue_area_h = 0.0
        self._last_change_h = 0.0

    def _account(self) -> None:
        now = self.env.now
        self.queue_area_h += self._waiting * (now - self._last_change_h)
        self._last_change_h = now

    def settle(self) -> None:
        """Bring :attr:`queue_area_h` up to now (at the horizon, before it is read)."""
        self._account()

    @property
    def waiting(self) -> int:
        return self._waiting

    def answer_at_once(self) -> bool:
        """Whether a caller ringing now is answered at once (an agent is free, nobody waits).

        If so the agent is taken; otherwise nothing changes and the caller must
        :meth:`arrive`. Most calls are answered at once: the model asks this first.
        """
        if self.busy < self.on_duty and not self._waiting:
            self.busy += 1
            return True
        return False

    def arrive(self, patience_h: float, priority: int = 0) -> simpy.Event | None:
        """A caller rings: None if answered at once, else an event (True answered, False gave up).

        ``priority`` (0 first) orders the queue only on a prioritised hotline.
        """
        if self.answer_at_once():
            return None
        env = self.env
        event = env.event()
        self._account()
        self._waiting += 1
        if self.prioritised:
            self._arrivals += 1
            heapq.heappush(self._heap, (priority, self._arrivals, _Waiting(event, env.now)))
        else:
            self._queue.append(_Waiting(event, env.now))
        if patience_h != float("inf"):
            env.timeout(patience_h).callbacks.append(lambda _: self._give_up(event))
        return event

    def _give_up(self, event: simpy.Event) -> None:
        if event.triggered:
            return
        self._account()
        self._waiting -= 1
        event.succeed(False)

    def release(self) -> None:
        """An agent finishes a call and takes the next caller if still on duty."""
        self.busy -= 1
        if self._waiting:  # most calls end with nobody waiting: skip the call to _serve
            self._serve()

    def set_agents(self, on_duty: int) -> None:
        """A change in the number on duty (a shift change, a surge's extra agents)."""
        self.on_duty = on_duty
        self.agents.record(self.env.now, on_duty)
        self._serve()

    def _next_waiting(self) -> _Waiting | None:
        if self.prioritised:
            return heapq.heappop(self._heap)[2] if self._heap else None
        return self._queue.popleft() if self._queue else None

    def _serve(self) -> None:
        while self.busy < self.on_duty:
            waiting = self._next_waiting()
            if waiting is None:
                break
            if waiting.event.triggered:  # hung up earlier; its entry is dropped lazily
                continue
            self._account()
            self._waiting -= 1
            self.busy += 1
            waiting.event.succeed(True)
