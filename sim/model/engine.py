"""The model's shortcuts around SimPy's machinery: the only module that touches its internals.

A national year is some 700 000 calls, and SimPy's generic machinery (a ``Process`` per
call, ``Timeout.__init__``, ``Environment.schedule``, ``Resource``) costs as much as the
model's own work. The shortcuts here schedule the very events SimPy would schedule, with
the same times, priorities and event ids, in the same order, so a run gives the same
records to the last bit (PERFORMANCE.md has the measurements). They rely on SimPy's
internals, listed here and nowhere else:

* ``Environment._now`` (the clock), ``_queue`` (the event heap of ``(time, priority,
  id, event)``) and ``_eid`` (the id counter);
* a :class:`simpy.Timeout` made without its ``__init__`` has the attributes ``env``,
  ``callbacks``, ``_value``, ``_delay`` and ``_ok``;
* a process is started from an already triggered event at ``URGENT`` priority;
* once an event is processed, its ``callbacks`` is None and SimPy keeps no reference to
  the list it called (so a call's :class:`Timer` can be given the same list again).

``tests/test_engine_shortcuts.py`` is the contract: it fails if a SimPy release changes
any of this. The layer above uses the public names only: :func:`make_wait`,
:func:`make_sleep` with :func:`new_timer`, :func:`start_urgently`, :class:`CallSource`
and :class:`Bays`.

The call protocol. A call is a generator that resumes itself instead of a
:class:`simpy.Process`: ``Process`` would start it from an event of its own, resume it
from a callback of its own (a Python frame) on each event it waits for, and trigger
itself as an event when done; nothing waits on a call, so all three were pure cost.
Instead, just before it yields, the call appends its own ``send`` (``resume``, which
its :class:`CallSource` hands it) to the callbacks of the event it waits for, which is
the very place ``Process`` would append its callback: the call is resumed in the same
order relative to everything else. A call must never return while being resumed
(``send`` would raise ``StopIteration`` into SimPy's loop), so each end of a call drops
``resume`` (a reference back to the generator: a cycle) and stops at a last ``yield``
that nothing resumes; the generator is freed with the callbacks of the event that
resumed it last.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from functools import partial
from heapq import heappush

import simpy
from simpy.events import NORMAL, URGENT

Callback = Callable[[simpy.Event], None]
# A call yields nothing and is resumed with the event it waited for.
CallProcess = Generator[None, simpy.Event, None]
Resume = Callable[[simpy.Event], None]
Wait = Callable[[float, Callback], float]
"""``wait(delay_h, callback)``: call ``callback(event)`` in ``delay_h``; returns that time."""


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
    """A call's own timeout: made once per call, scheduled again by each of its waits.

    A call waits for at most one thing at a time, and SimPy forgets an event once it has
    run its callbacks, so one timeout per call serves all its waits (four to five):
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

    A source process would wait for each call's time with a timeout and start the call as
    a process. Here the timeout's callback starts the calls due itself, each as a
    self-resuming generator ``call(i, now)`` (see the module docstring) that reads its
    ``resume`` from :attr:`resume` at its first step, before its first ``yield``.

    :meth:`release_first` schedules the first timeout and returns the calls due at time
    0; the caller starts them with :meth:`start_urgently` once its own processes are
    started, as processes started first would have started them. Afterwards the next
    timeout is always scheduled before the due calls take their first step, as the
    source process did.
    """

    __slots__ = (
        "_call",
        "_env",
        "_n",
        "_next",
        "_next_h",
        "_on_time_callback",
        "_times",
        "_wait",
        "resume",
    )

    def __init__(
        self,
        env: simpy.Environment,
        times: Sequence[float],
        n: int,
        call: Callable[[int, float], CallProcess],
    ) -> None:
        self._env = env
        self._wait = make_wait(env)
        self._times = times
        self._n = n
        self._call = call
        self._next = 0
        self._next_h = 0.0  # when the pending timeout fires
        self._on_time_callback = self._on_time  # bound once, not once per call
        self.resume: Resume = _unset_resume

    def release_first(self) -> range:
        """The calls due at time 0; schedules the timeout for the next one."""
        return self._release(0.0)

    def start_urgently(self, ids: range) -> None:
        """Start each call from an urgent event, as ``env.process`` would."""
        for i in ids:
            start_urgently(self._env, partial(self._begin, i))

    def _begin(self, i: int, _: simpy.Event) -> None:
        process = self._call(i, self._env._now)
        self.resume = process.send
        next(process)

    def _on_time(self, _: simpy.Event) -> None:
        # The timeout fired: ``now`` is its due time, env.now to the bit. The first call
        # due is the one it waited for, whatever the rounding of now (now + (t - now)
        # can differ from t by an ulp). Runs once per call: _release is spelt out here.
        now = self._next_h
        times = self._times
        n = self._n
        first = self._next
        end = first + 1
        while end < n and not times[end] > now:
            end += 1
        self._next = end
        if end < n:
            self._next_h = self._wait(times[end] - now, self._on_time_callback)
        call = self._call
        for i in range(first, end):
            process = call(i, now)
            self.resume = process.send
            next(process)

    def _release(self, now: float) -> range:
        """The calls due at ``now`` (at the start); schedules the timeout for the next one."""
        times = self._times
        n = self._n
        first = end = self._next
        while end < n and not times[end] > now:
            end += 1
        self._next = end
        if end < n:
            self._next_h = self._wait(times[end] - now, self._on_time_callback)
        return range(first, end)


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
