"""The model's shortcuts around SimPy's machinery: the only module that touches its internals.

A national year is some 700 000 calls, and SimPy's generic machinery (a ``Process`` per
call, ``Timeout.__init__``, ``Environment.schedule``, ``Resource``) costs as much as the
model's own work. The shortcuts here schedule the very events SimPy would schedule, with
the same times, priorities and event ids, in the same order, so a run gives the same
records to the last bit (PERFORMANCE.md has the measurements). They rely on SimPy's
internals, listed here and nowhere else:

* ``Environment._now`` (the clock), ``_queue`` (the event heap of ``(time, priority,
  id, event)``) and ``_eid`` (the id counter);
* ``Environment.run(until)`` is ``step()`` in a loop until an urgent event at ``until``
  raises ``StopSimulation``, and ``step()`` pops the heap, sets the clock, calls the
  event's callbacks and crashes on a failed event nobody defused (:func:`run_until`);
* a :class:`simpy.Timeout` made without its ``__init__`` has the attributes ``env``,
  ``callbacks``, ``_value``, ``_delay`` and ``_ok``;
* a process is started from an already triggered event at ``URGENT`` priority;
* once an event is processed, its ``callbacks`` is None and SimPy keeps no reference to
  the list it called (so a call's :class:`Timer` can be given the same list again).

``tests/test_engine_shortcuts.py`` is the contract: it fails if a SimPy release changes
any of this. The layer above uses the public names only: :func:`run_until`, :func:`make_wait`,
:func:`make_sleep` with :func:`new_timer`, :func:`start_urgently`, :class:`CallSource`
and :class:`Bays`.

The call protocol. Calls are served by workers, generators that resume themselves
instead of a :class:`simpy.Process` per call: ``Process`` would start a call from an
event of its own, resume it from a callback of its own (a Python frame) on each event
it waits for, and trigger itself as an event when done; nothing waits on a call, so
all three were pure cost. Instead, just before it yields, a worker appends its own
``send`` (``resume``, which its :class:`CallSource` hands it) to the callbacks of the
event it waits for, which is the very place ``Process`` would append its callback: the
call is resumed in the same order relative to everything else. A worker never returns
(``send`` would raise ``StopIteration`` into the loop): at the end of a call it waits
for its next one (:class:`CallSource` has the details). Its ``resume`` is a reference
back to it (a cycle), freed by the garbage collector with the model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from functools import partial
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import NORMAL, URGENT, EventPriority

Callback = Callable[[simpy.Event], None]
# A call yields nothing and is resumed with the event it waited for.
CallProcess = Generator[None, simpy.Event, None]
# A worker serves calls one after another: resumed with the event it waited for during
# a call, and with the number of its next call (an int) when it has none.
CallWorker = Generator[None, Any, None]
Resume = Callable[[simpy.Event], None]
Wait = Callable[[float, Callback], float]
"""``wait(delay_h, callback)``: call ``callback(event)`` in ``delay_h``; returns that time."""


def run_until(env: simpy.Environment, until: float) -> None:
    """``env.run(until=until)``, with ``Environment.step`` spelt out in its loop.

    ``step`` is a Python call per event (some five a call); this loop does what ``run``
    and ``step`` do, statement for statement: the same stop event (urgent, at ``until``,
    scheduled the same way), the same events processed in the same order, the stop
    event scheduled again with the callbacks after its own if the run stops in the
    middle of them, and the same error for a failed event that nobody defused.
    """
    at = float(until)
    if at <= env._now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    stop = simpy.Event(env)
    stop._ok = True
    stop._value = None
    env.schedule(stop, URGENT, at - env._now)
    stop.callbacks.append(StopSimulation.callback)
    queue = env._queue
    while True:
        try:
            env._now, _, _, event = heappop(queue)
        except IndexError:  # never while the stop event is queued: as run() says it
            raise RuntimeError(
                f'No scheduled events left but "until" event was not triggered: {stop}'
            ) from None
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            env.schedule(event, EventPriority(-1))
            return
        if not event._ok and not hasattr(event, "_defused"):
            failure = event._value
            crash = type(failure)(*failure.args)
            crash.__cause__ = failure
            raise crash


def make_wait(env: simpy.Environment) -> Wait:
    """``env.timeout(delay).callbacks.append(callback)``, in one call, returning the due time.

    The event made and scheduled is the one ``env.timeout(delay)`` makes: a
    :class:`simpy.Timeout` with the same attributes, pushed onto the environment's queue
    with the same key (``now + delay``, normal priority, the next event id), without its
    two Python calls (``Timeout.__init__``, ``Environment.schedule``). The time returned
    is that key: what ``env.now`` will be when ``callback`` runs, to the bit.
    """
    queue = env._queue
    eid = env._eid
    new = object.__new__

    def wait(delay: float, callback: Callback) -> float:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        event = new(simpy.Timeout)
        event.env = env
        event.callbacks = [callback]
        event._value = None
        event._delay = delay
        event._ok = True
        due: float = env._now + delay
        heappush(queue, (due, NORMAL, next(eid), event))
        return due

    return wait


class Timer(simpy.Timeout):
    """A worker's own timeout: made once, scheduled again by each of its waits.

    A worker waits for at most one thing at a time, and SimPy forgets an event once it
    has run its callbacks, so one timeout serves all the waits of all its calls:
    each :func:`make_sleep` wait spares making a :class:`simpy.Timeout` and its list of
    callbacks. The event is the one ``env.timeout(delay)`` would make (same attributes)
    and it is scheduled with the same key, so everything happens in the same order.
    """

    # The call's ``resume``, as the callbacks list the timeout is given at each wait
    # (SimPy sets ``callbacks`` to None once it has called them, and never changes the list).
    again: list[Callback]


Sleep = Callable[[Timer, float], float]
"""``sleep(timer, delay_h)``: resume ``timer``'s call in ``delay_h``; returns that time."""


def new_timer(env: simpy.Environment, resume: Callback) -> Timer:
    """The timer of the call that ``resume`` resumes (see :class:`Timer`)."""
    timer = object.__new__(Timer)
    timer.env = env
    timer.callbacks = None  # type: ignore[assignment]  # as after an event has run
    timer._value = None
    timer._delay = 0.0
    timer._ok = True
    timer.again = [resume]
    return timer


def make_sleep(env: simpy.Environment) -> Sleep:
    """:func:`make_wait` for a call's own :class:`Timer`: the same key, no new event."""
    queue = env._queue
    eid = env._eid

    def sleep(timer: Timer, delay: float) -> float:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        timer.callbacks = timer.again
        timer._delay = delay
        due: float = env._now + delay
        heappush(queue, (due, NORMAL, next(eid), timer))
        return due

    return sleep


def start_urgently(env: simpy.Environment, callback: Callback) -> None:
    """Call ``callback(event)`` now, after the events already due now at urgent priority.

    This is how ``env.process(generator)`` starts a process: from an already triggered
    event (simpy's ``Initialize``) scheduled at ``URGENT`` priority.
    """
    begin = env.event()
    begin._ok = True
    begin._value = None
    begin.callbacks.append(callback)
    env.schedule(begin, URGENT)


def _unset_resume(_: simpy.Event) -> None:
    raise AssertionError("a call started other than by its CallSource")


class CallSource:
    """Starts call ``i`` at ``times[i]`` for ``i < n``: the call source, without a process.

    A source process would wait for each call's time with a timeout and start each call
    as a process of its own. Here the source's own :class:`Timer`, scheduled again for
    each call's time, starts the calls due itself, and a call is served by a *worker*:
    a self-resuming generator (see the module docstring) that serves calls one after
    another. Making a generator for each call, and closing it at its end (a generator
    stopped at a ``yield`` is closed by throwing into it), cost as much as a sixth of
    a call's own work.

    The protocol: ``worker()`` makes a worker; at its first step it reads its
    ``resume`` from :attr:`resume` (and makes its own :class:`Timer`), then waits at a
    ``yield`` for a call. The source starts call ``i`` by sending ``i`` to a spare
    worker (a new one when none is spare), after setting :attr:`t_call_h`; the worker
    runs the call's first step until it waits for something. At the end of a call the
    worker appends its ``resume`` to :attr:`spare` and waits for its next call. So a run
    makes as many workers as calls are ever under way at once.

    :meth:`release_first` schedules the first timeout and returns the calls due at time
    0; the caller starts them with :meth:`start_urgently` once its own processes are
    started, as processes started first would have started them. Afterwards the next
    timeout is always scheduled before the due calls take their first step, as the
    source process did.
    """

    __slots__ = (
        "_eid",
        "_env",
        "_n",
        "_next",
        "_next_h",
        "_queue",
        "_sleep",
        "_timer",
        "_times",
        "_worker",
        "resume",
        "spare",
        "t_call_h",
    )

    def __init__(
        self,
        env: simpy.Environment,
        times: Sequence[float],
        n: int,
        worker: Callable[[], CallWorker],
    ) -> None:
        self._env = env
        self._queue = env._queue
        self._eid = env._eid
        self._sleep = make_sleep(env)
        self._timer = new_timer(env, self._on_time)
        self._times = times
        self._n = n
        self._worker = worker
        self._next = 0
        self._next_h = 0.0  # when the source's timer fires next
        self.resume: Resume = _unset_resume  # the new worker's, while it takes its first step
        self.spare: list[Resume] = []  # the resume of each worker waiting for a call
        self.t_call_h = 0.0  # the time of the call being started

    def release_first(self) -> range:
        """The calls due at time 0; schedules the timeout for the next one."""
        times = self._times
        n = self._n
        end = 0
        while end < n and not times[end] > 0.0:
            end += 1
        self._next = end
        if end < n:
            self._next_h = self._sleep(self._timer, times[end])
        return range(0, end)

    def start_urgently(self, ids: range) -> None:
        """Start each call from an urgent event, as ``env.process`` would."""
        for i in ids:
            start_urgently(self._env, partial(self._begin, i))

    def _new_worker(self) -> Resume:
        """A new worker, waiting for its first call: its ``resume``."""
        worker = self._worker()
        resume = self.resume = worker.send
        next(worker)
        return resume

    def _begin(self, i: int, _: simpy.Event) -> None:
        self.t_call_h = self._env._now
        (self.spare.pop() if self.spare else self._new_worker())(i)  # type: ignore[arg-type]

    def _on_time(self, _: simpy.Event) -> None:
        # The timer fired: ``now`` is its due time, env.now to the bit. The first call
        # due is the one it waited for, whatever the rounding of now (now + (t - now)
        # can differ from t by an ulp). Runs once per call: sleep is spelt out here.
        now = self._next_h
        times = self._times
        n = self._n
        first = self._next
        end = first + 1
        while end < n and not times[end] > now:
            end += 1
        self._next = end
        if end < n:  # self._next_h = self._sleep(timer, times[end] - now)
            timer = self._timer
            timer.callbacks = timer.again
            delay = timer._delay = times[end] - now  # > 0: times[end] > now
            self._next_h = due = now + delay
            heappush(self._queue, (due, NORMAL, next(self._eid), timer))
        self.t_call_h = now
        spare = self.spare
        for i in range(first, end):
            start = spare.pop() if spare else self._new_worker()
            start(i)  # type: ignore[arg-type]  # (a worker waiting for a call takes its number)


class Bays:
    """A pool of identical servers: ``simpy.Resource``, event for event, without its machinery.

    About one call in ten is towed to a workshop, and the generic resource classes cost as
    much as the rest of such a call. This keeps their behaviour exactly: a request is an
    event that is triggered when a server is granted; a release frees the server at once
    and triggers a release event, and only when that event is processed is the first
    waiting request granted; a request made in between takes a free server only if nobody
    is waiting (the grant always goes to the head of the queue). Same events, scheduled at
    the same points, so the order of everything else is unchanged.
    """

    __slots__ = ("_capacity", "_env", "_users", "_waiting")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self._env = env
        self._capacity = capacity
        self._users = 0
        self._waiting: deque[simpy.Event] = deque()

    def request(self) -> simpy.Event:
        """An event triggered when the caller has a server (at once, if one is free)."""
        granted = self._env.event()
        self._waiting.append(granted)
        self._grant()
        return granted

    def release(self) -> None:
        """Free a server; the next waiting request gets it when the release is processed."""
        self._users -= 1
        released = self._env.event()
        released.callbacks.append(self._grant)
        released.succeed()

    def _grant(self, _: simpy.Event | None = None) -> None:
        if self._waiting and self._users < self._capacity:
            self._users += 1
            self._waiting.popleft().succeed()
