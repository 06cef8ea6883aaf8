"""The experiment engine: runs of (scenario point, policy, replication), anywhere.

``run``, ``compare`` and ``sweep`` all come down to a list of :class:`RunSpec`. Each run
draws its random numbers from the scenario's seed and its replication number only, so
every point and policy of replication r sees the same calls (common random numbers),
and a run gives the same numbers whether it runs first or last, alone or with others,
in this process, in a local worker process or on a Dask cluster.

:class:`Experiment` drives the runs through an :class:`Engine`:

* :class:`LocalEngine` runs them in this process (one worker) or in a pool of local
  worker processes. On Linux the workers are forked from this process, so they start
  with everything it has imported and every network it has built (the checks before a
  run build them); elsewhere they are spawned and import once. Either way a worker
  builds a point's network once and keeps it
  (:func:`~sim.experiments.runs.worker.cached_network`).
* :class:`DaskEngine` submits them to a ``dask.distributed`` cluster: one at
  ``--scheduler tcp://HOST:PORT`` through a ``Client``, or a ``LocalCluster`` it starts.

A worker returns only the KPIs of a run. When tables are wanted and there is a result
store, the worker writes them into the store itself; the process driving the experiment
then records the run's row (:mod:`sim.experiments.runs.store`), never holding more than the
KPIs. Runs whose key is already in the store are not run again, and a run that raises
is recorded with its error (and the call it failed on, where there is one) while the
others go on. What a worker does is in :mod:`sim.experiments.runs.worker`; run keys in
:mod:`sim.experiments.runs.keys`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing import get_all_start_methods, get_context
from types import TracebackType
from typing import Any

import pandas as pd

from sim.errors import UserInputError
from sim.experiments.runs.keys import code_digest, package_version, run_key, scenario_digest
from sim.experiments.runs.progress import ProgressState, ReportFn
from sim.experiments.runs.replication import PolicySpec, ReplicationResult, Table, policy_label
from sim.experiments.runs.store import TABLE_KINDS, ResultStore, RunFailure, StoredRun
from sim.experiments.runs.worker import (
    ErrorInfo,
    Task,
    TaskResult,
    execute_task,
    init_worker,
    lost_result,
)
from sim.model.scenario import Scenario

# How often a waiting engine reports progress when no run has ended (seconds).
TICK_S = 1.0

# How long to try to reach a Dask scheduler and hear its handshake before giving up
# (seconds), unless SCHEDULER_TIMEOUT_ENV says otherwise.
CONNECT_TIMEOUT_S = 10.0

SCHEDULER_TIMEOUT_ENV = "RESCUE_SIM_SCHEDULER_TIMEOUT"
"""The environment variable that sets how long to wait for a Dask scheduler (seconds).

A variable rather than an option: how long a scheduler takes to answer is a property of
the network between this machine and the cluster, the same for every command and for the
Python API, and set once where the cluster is set up (as Dask's own settings are)."""

PAUSE_AFTER_ENV = "RESCUE_SIM_PAUSE_AFTER_RUNS"
"""For tests only: ``N`` or ``N:FILE``. After the N-th run it finishes (and stores), the
command touches FILE, if given, and waits there until a signal ends it.

The tests that stop a command midway (^C, SIGTERM, SIGKILL of the group) set it, so that
the signal lands mid-experiment with exactly N runs done however fast or busy the
machine is, instead of racing the signal against the runs."""

# The schemes of a scheduler another process can reach (dask.distributed's comm
# backends; inproc:// lives inside one process, so no command can reach it).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss")


# --------------------------------------------------------------------------- engines

ResultFn = Callable[[Task, TaskResult], None]
TickFn = Callable[[float], None]


class Engine(ABC):
    """Runs tasks and hands each result back, in this process, as it ends."""

    workers: int = 1
    name: str = "engine"

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - an engine without resources has nothing to do
        """Release workers and connections."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], on_result: ResultFn, on_tick: TickFn) -> None:
        """Run every task; ``on_result`` as each ends, ``on_tick`` about once a second
        with the fraction done of the run under way when known (else 0)."""


def _start_method() -> str:
    """``fork`` where it is safe, else ``spawn``.

    Forked workers start at once, with the modules and networks of this process. Forking
    is safe only while this process runs a single Python thread (the command line does):
    a thread holding a lock at the fork would leave it locked in every worker. Within a
    notebook's kernel, say, which runs threads of its own, workers are spawned.
    """
    if (
        sys.platform == "linux"
        and "fork" in get_all_start_methods()
        and threading.active_count() == 1
    ):
        return "fork"
    return "spawn"


class LocalEngine(Engine):
    """This process (``workers=1``) or a pool of ``workers`` local processes (at most one
    per core)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, tasks: Sequence[Task], on_result: ResultFn, on_tick: TickFn) -> None:
        if self.workers == 1 or (len(tasks) <= 1 and self._pool is None):
            for task in tasks:
                on_result(task, execute_task(task, on_tick, in_process=True))
            return
        if self._pool is None:
            # More processes than cores only share them, at the cost of their memory.
            self._pool = ProcessPoolExecutor(
                max_workers=min(self.workers, os.cpu_count() or 1),
                mp_context=get_context(_start_method()),
                initializer=init_worker,
                initargs=(os.getpid(),),
            )
        pool = self._pool
        try:
            futures: dict[Future[TaskResult], Task] = {
                pool.submit(execute_task, task): task for task in tasks
            }
            pending = set(futures)
            broken = False
            while pending:
                done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
                for future in done:
                    task = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        broken = True
                        result = lost_result(task, exc, "a worker process died (out of memory?)")
                    on_result(task, result)
                on_tick(0.0)
            if broken:
                self.close()
        except BaseException:
            self._terminate()
            raise

    def _terminate(self) -> None:
        """Stop the workers now, mid-run (on ^C): their unfinished runs are simply lost."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.kill()  # deaf to SIGTERM (see worker.init_worker)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)


@contextmanager
def _deaf_children() -> Iterator[None]:
    """Processes started inside ignore SIGINT and SIGTERM, as local workers do
    (:func:`~sim.experiments.runs.worker.init_worker`).

    A signal to the process group (^C at a terminal) is this process's to handle: it
    cancels the runs and closes the cluster. A ``LocalCluster``'s worker processes are
    spawned (a new interpreter, which keeps an ignored signal ignored) and would
    otherwise each print a KeyboardInterrupt traceback; they still end when this process
    does (Dask's workers watch their parent).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _GROUP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_GROUP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _distributed(option: str) -> Any:
    """The ``distributed`` module, or a :class:`UserInputError` naming ``option``."""
    try:
        # Typed Any: dask.distributed is optional and ships without type hints.
        return importlib.import_module("distributed")
    except ImportError:
        raise UserInputError(
            "needs dask.distributed: pip install 'rescue-sim[cluster]'", field=option
        ) from None


class DaskEngine(Engine):
    """A ``dask.distributed`` cluster: the one at ``address``, or a ``LocalCluster``.

    Needs the ``cluster`` extra (``pip install 'rescue-sim[cluster]'``). Every worker
    must have rescue-sim installed (the same version), and see the files the scenario
    names and, for tables, the output folder, at the same paths (docs/cluster.md).
    """

    name = "dask"

    def __init__(
        self, address: str | None = None, workers: int = 1, timeout_s: float | None = None
    ) -> None:
        if workers < 1:
            raise UserInputError("must be at least 1", field="--workers")
        self.address = address
        self.workers = workers
        # How long to wait for the scheduler (None: SCHEDULER_TIMEOUT_ENV, else 10 s).
        self.timeout_s = timeout_s
        self._client: Any = None
        self._cluster: Any = None
        self._checked = False
        self._muted: int | None = None  # the level of Dask's logger before _mute

    def check(self) -> None:
        """Make sure a Dask scheduler answers at the address, within the timeout.

        Once per engine; an engine that starts its own ``LocalCluster`` has nothing to
        check. Anything else (an address that is no scheduler's, a closed port, a server
        that is silent or speaks another protocol) is a :class:`UserInputError` naming
        ``--scheduler``.
        """
        if self._checked or self.address is None:
            return
        timeout_s = self.timeout_s if self.timeout_s is not None else scheduler_timeout_s()
        check_scheduler(self.address, timeout_s)
        self._checked = True

    def __enter__(self) -> DaskEngine:
        self._connect()
        return self

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        distributed = _distributed("--scheduler" if self.address else "--engine")
        if self.address is not None:
            self.check()
            timeout_s = self.timeout_s if self.timeout_s is not None else scheduler_timeout_s()
            try:
                self._client = distributed.Client(self.address, timeout=timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserInputError(
                    f"cannot reach the Dask scheduler at {self.address}: {exc}",
                    field="--scheduler",
                ) from None
        else:
            with _deaf_children():
                self._cluster = distributed.LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,  # the model is pure Python: one run per process
                    processes=True,
                    dashboard_address=None,
                    # Runs cancelled on ^C, and workers removed at the end, are this
                    # command's to report (in one line); Dask would add a warning each.
                    # CRITICAL, not ERROR: a worker whose heartbeat finds the scheduler
                    # gone (stopped by a signal, on a busy machine before the worker is
                    # told) logs an ERROR with a traceback. A run that fails still
                    # reaches the command through its future.
                    silence_logs=logging.CRITICAL,
                )
            self._client = distributed.Client(self._cluster)
        return self._client

    @property
    def scheduler_address(self) -> str:
        return str(self._connect().scheduler.address)

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        try:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        finally:
            if self._muted is not None:
                logging.getLogger("distributed").setLevel(self._muted)
                self._muted = None

    def run(self, tasks: Sequence[Task], on_result: ResultFn, on_tick: TickFn) -> None:
        client = self._connect()
        distributed: Any = importlib.import_module("distributed")
        batch = uuid.uuid4().hex[:8]
        futures = {
            client.submit(execute_task, task, key=f"rescue-{task.key}-{batch}", pure=False): task
            for task in tasks
        }
        try:
            finished = distributed.as_completed(list(futures))
            while not finished.is_empty():
                if not finished.has_ready():
                    time.sleep(0.1)
                    on_tick(0.0)
                    continue
                for future in finished.next_batch(block=False):
                    task = futures[future]
                    try:
                        result = future.result()
                    except Exception as exc:  # the worker died, or the task could not travel
                        result = lost_result(task, exc, f"{type(exc).__name__}: {exc}")
                    future.release()
                    on_result(task, result)
        except BaseException:
            # Stopped (^C, SIGTERM, an error here): this command says so in one line.
            # What Dask logs while its runs are cancelled and the cluster closed (keys
            # it could not gather, workers it lost) says nothing more.
            self._mute()
            client.cancel(list(futures))
            raise

    def _mute(self) -> None:
        """Silence Dask's logging in this process until :meth:`close` has closed all."""
        if self._muted is None:
            logger = logging.getLogger("distributed")
            self._muted = logger.level
            logger.setLevel(logging.CRITICAL + 1)


def scheduler_timeout_s() -> float:
    """How long to wait for a Dask scheduler: ``RESCUE_SIM_SCHEDULER_TIMEOUT`` seconds
    when set (a positive, finite number), else :data:`CONNECT_TIMEOUT_S`."""
    text = os.environ.get(SCHEDULER_TIMEOUT_ENV, "").strip()
    if not text:
        return CONNECT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserInputError(
            f"{text!r}: give the seconds to wait for the Dask scheduler, a positive number",
            field=SCHEDULER_TIMEOUT_ENV,
        )
    return seconds


def check_scheduler_address(address: str) -> tuple[str, str, int]:
    """``SCHEME://HOST:PORT`` taken apart, the scheme one another process can reach;
    else a :class:`UserInputError` naming ``--scheduler``."""
    scheme, sep, location = address.partition("://")
    host, colon, port_text = location.rpartition(":")
    host = host.strip("[]")  # an IPv6 host is written [::1]
    wrong = UserInputError(
        f"{address!r}: give the scheduler's address as tcp://HOST:PORT "
        f"(or {', '.join(s + '://' for s in SCHEDULER_SCHEMES[1:])})",
        field="--scheduler",
    )
    if not sep or scheme not in SCHEDULER_SCHEMES or not colon or not host:
        raise wrong
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or "/" in host:
        raise wrong
    return scheme, host, int(port_text)


def check_scheduler(address: str, timeout_s: float) -> None:
    """A Dask handshake and an ``identity`` call with the scheduler at ``address``, all
    within ``timeout_s``; anything else is a :class:`UserInputError` naming ``--scheduler``.

    Dask's own connect retries a refused connection until its timeout and then waits
    for the peer's handshake without one: a server that stays silent (an HTTP server
    waits for a request) would hold a command for ever, and one that answers first with
    other bytes makes it read a frame length of exabytes. Here the whole exchange runs
    in a thread of its own, bounded as a whole; a refused TCP connection ends it at once.
    """
    scheme, host, port = check_scheduler_address(address)
    distributed = _distributed("--scheduler")

    def fail(reason: str) -> UserInputError:
        return UserInputError(
            f"cannot reach the Dask scheduler at {address}: {reason}", field="--scheduler"
        )

    if scheme == "tcp":
        import socket

        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except ConnectionRefusedError:
            raise fail("connection refused (is the scheduler running?)") from None
        except OSError:
            pass  # no answer, or a name not resolved yet: Dask's connect retries these

    async def identity() -> object:
        comm = await distributed.comm.connect(address, timeout=timeout_s)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> object:
        return await asyncio.wait_for(identity(), timeout_s)

    answer: dict[str, object] = {}

    def probe() -> None:
        try:
            answer["identity"] = asyncio.run(bounded())
        except BaseException as exc:  # whatever it is, it is no scheduler
            answer["error"] = exc

    thread = threading.Thread(target=probe, name="rescue-sim-scheduler-check", daemon=True)
    thread.start()
    thread.join(timeout_s + 5.0)  # wait_for ends it; a hung name lookup may not
    error = answer.get("error")
    reply = answer.get("identity")
    waited = f"{timeout_s:g} s ({SCHEDULER_TIMEOUT_ENV} sets how long to wait)"
    if thread.is_alive() or isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise fail(f"no Dask handshake within {waited}")
    if isinstance(error, OSError) and "Timed out" in str(error):
        raise fail(f"no connection within {waited}")
    if isinstance(error, OSError) and not isinstance(error, distributed.comm.CommClosedError):
        raise fail(error.strerror or str(error) or type(error).__name__)
    if error is not None or not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise fail("the server there does not answer as a Dask scheduler")


ENGINES = ("local", "dask")


def make_engine(kind: str = "local", workers: int = 1, scheduler: str | None = None) -> Engine:
    """The engine that ``--engine``, ``--workers`` and ``--scheduler`` ask for; a
    scheduler is checked now (:meth:`DaskEngine.check`), before any work."""
    if scheduler is not None:
        if kind not in ("local", "dask"):
            raise UserInputError(f"unknown engine {kind!r}; known: local, dask", field="--engine")
        check_scheduler_address(scheduler)
        engine = DaskEngine(scheduler, workers)
        engine.check()
        return engine
    if kind == "local":
        return LocalEngine(workers)
    if kind == "dask":
        return DaskEngine(None, workers)
    raise UserInputError(f"unknown engine {kind!r}; known: local, dask", field="--engine")


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: a scenario point under a policy, one replication."""

    scenario: Scenario
    policy: PolicySpec
    replication: int
    point: int = 0


@dataclass
class RunOutcome:
    """The end of one run: its KPIs and tables, or its failure."""

    spec: RunSpec
    key: str
    kpis: dict[str, float] | None
    hotline_queue_area_h: float
    calls: Table | None = None
    units: Table | None = None
    agents: Table | None = None
    relocations: pd.DataFrame | None = None  # move-up drives (read back when reused)
    failure: RunFailure | None = None
    exception: BaseException | None = None
    reused: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def replication_result(self) -> ReplicationResult:
        if self.kpis is None:
            raise ValueError(f"run {self.key} failed: it has no result")
        empty = pd.DataFrame()
        return ReplicationResult(
            self.spec.replication,
            self.calls if self.calls is not None else empty,
            self.units if self.units is not None else empty,
            self.kpis,
            self.hotline_queue_area_h,
            self.agents,
            self.relocations,
        )


@dataclass
class _Entry:
    """One distinct run (by key) and every spec that asks for it."""

    key: str
    specs: list[RunSpec] = field(default_factory=list)
    outcome: RunOutcome | None = None


class Experiment:
    """Runs given in one or more batches on an engine, into an optional result store.

    ``tables``: keep each run's call and unit tables (written to the store by the
    workers when there is one, else sent back in memory). Runs already finished in the
    store are reused, not run again; runs asked for twice (the same key) run once.
    ``report`` is called with a :class:`ProgressState` as runs end and about once a
    second. ``description`` goes into the store's manifest.
    """

    def __init__(
        self,
        engine: Engine,
        store: ResultStore | None = None,
        *,
        tables: bool = True,
        report: ReportFn | None = None,
        description: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.tables = tables
        self.report = report
        self.description = description or {}
        self._entries: dict[str, _Entry] = {}
        self._started = time.monotonic()
        self._finished = self._failed = self._reused = 0

    # ------------------------------------------------------------------ state

    @property
    def outcomes(self) -> list[RunOutcome]:
        return [e.outcome for e in self._entries.values() if e.outcome is not None]

    @property
    def failures(self) -> list[RunFailure]:
        return [o.failure for o in self.outcomes if o.failure is not None]

    def state(self, running: float = 0.0) -> ProgressState:
        return ProgressState(
            total=len(self._entries),
            finished=self._finished,
            failed=self._failed,
            reused=self._reused,
            running=running,
            elapsed_s=time.monotonic() - self._started,
        )

    def _tick(self, running: float = 0.0) -> None:
        if self.report is not None:
            self.report(self.state(running))

    # ------------------------------------------------------------------ running

    def execute(self, specs: Sequence[RunSpec]) -> list[RunOutcome]:
        """Run ``specs`` (those not already done); their outcomes, in the order given."""
        keys: list[str] = []
        new: list[_Entry] = []
        digests: dict[int, tuple[str, str]] = {}
        for spec in specs:
            key = run_key(spec.scenario, spec.policy, spec.replication)
            keys.append(key)
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(key)
                new.append(entry)
            entry.specs.append(spec)
        tasks: list[Task] = []
        for entry in new:
            spec = entry.specs[0]
            if self.store is not None:
                # None also for a run with a part that does not read: set aside, run again.
                stored = self.store.reusable_run(entry.key, tables=self.tables)
                if stored is not None:
                    entry.outcome = self._reuse(entry.key, spec, stored)
                    continue
            if id(spec.scenario) not in digests:
                text = spec.scenario.model_dump_json(by_alias=True)
                digests[id(spec.scenario)] = (text, scenario_digest(spec.scenario))
            text, digest = digests[id(spec.scenario)]
            tasks.append(
                Task(
                    key=entry.key,
                    scenario_json=text,
                    digest=digest,
                    policy=spec.policy,
                    replication=spec.replication,
                    store_root=str(self.store.root) if self.store and self.tables else None,
                    return_tables=self.tables and self.store is None,
                )
            )
        if self.store is not None:
            self.store.warn_set_aside()
        self._write_manifest()
        self._tick()
        try:
            if tasks:
                self.engine.run(tasks, self._on_result, self._tick)
        finally:
            self._write_manifest()
        outcomes = []
        for key, spec in zip(keys, specs, strict=True):
            outcome = self._entries[key].outcome
            if outcome is None:  # an engine that returned without running a task
                raise RuntimeError(f"run {key} was not run")
            # A run asked for under two points (equal scenarios) answers both.
            outcomes.append(outcome if outcome.spec == spec else _respec(outcome, spec))
        return outcomes

    def _reuse(self, key: str, spec: RunSpec, stored: StoredRun) -> RunOutcome:
        assert self.store is not None
        row, kpis = stored.row, stored.kpis
        calls = units = agents = None
        if self.tables:
            calls = self.store.table_path("calls", key)
            units = self.store.table_path("units", key)
            agents = self.store.table_path("agents", key)
        # Small (move-up drives only) and not assembled from parts: read with the row.
        relocations = stored.relocations
        self._finished += 1
        self._reused += 1
        return RunOutcome(
            spec,
            key,
            kpis,
            float(row["hotline_queue_area_h"]),
            calls,
            units,
            agents,
            relocations=relocations,
            reused=True,
            elapsed_s=float(row["elapsed_s"]),
        )

    def _on_result(self, task: Task, result: TaskResult) -> None:
        entry = self._entries[task.key]
        spec = entry.specs[0]
        error = result.error
        if error is None and result.code and result.code != code_digest():
            error = ErrorInfo(
                "OtherCode",
                f"worker {result.host} runs other rescue-sim code (version "
                f"{package_version()} here): install the same version on every worker",
                None,
                "",
            )
        if error is None and result.tables_written and self.store is not None:
            missing = [
                kind for kind in TABLE_KINDS if not self.store.table_path(kind, task.key).is_file()
            ]
            if missing:
                error = ErrorInfo(
                    "StoreNotShared",
                    f"worker {result.host} wrote the tables to {self.store.root}, which this "
                    "machine does not see: put --out on a folder every worker shares",
                    None,
                    "",
                )
        if error is not None:
            failure = RunFailure(
                key=task.key,
                point=spec.point,
                policy=policy_label(spec.scenario, spec.policy),
                replication=spec.replication,
                error_type=error.error_type,
                message=error.message,
                call_id=error.call_id,
                traceback=error.traceback,
                headline=error.headline,
                exception=error.exception,
            )
            if self.store is not None:
                self.store.write_failure(failure)
            entry.outcome = RunOutcome(
                spec, task.key, None, math.nan, failure=failure, exception=error.exception,
                elapsed_s=result.elapsed_s,
            )  # fmt: skip
            self._failed += 1
        else:
            assert result.kpis is not None
            calls: Table | None = result.calls
            units: Table | None = result.units
            agents: Table | None = result.agents
            if self.store is not None:
                self.store.write_run(
                    {
                        "key": task.key,
                        "point": spec.point,
                        "policy": policy_label(spec.scenario, spec.policy),
                        "replication": spec.replication,
                        "seed": spec.scenario.seed,
                        "hotline_queue_area_h": result.hotline_queue_area_h,
                        "elapsed_s": result.elapsed_s,
                    },
                    result.kpis,
                )
                if result.tables_written:
                    calls = self.store.table_path("calls", task.key)
                    units = self.store.table_path("units", task.key)
                    agents = self.store.table_path("agents", task.key)
            entry.outcome = RunOutcome(
                spec, task.key, result.kpis, result.hotline_queue_area_h, calls, units,
                agents, relocations=result.relocations, elapsed_s=result.elapsed_s,
            )  # fmt: skip
            self._finished += 1
        self._tick()
        _pause_if_asked(self._finished - self._reused)

    def _write_manifest(self) -> None:
        if self.store is None:
            return
        runs = []
        for entry in self._entries.values():
            spec = entry.specs[0]
            outcome = entry.outcome
            status = "pending" if outcome is None else ("failed" if outcome.failure else "done")
            runs.append(
                {
                    "key": entry.key,
                    "points": sorted({s.point for s in entry.specs}),
                    "policy": policy_label(spec.scenario, spec.policy),
                    "replication": spec.replication,
                    "status": status,
                }
            )
        state = self.state()
        self.store.write_manifest(
            {
                **self.description,
                "package_version": package_version(),
                "code_sha256": code_digest(),
                "engine": self.engine.name,
                "workers": self.engine.workers,
                "tables": self.tables,
                "counts": {
                    "runs": state.total,
                    "finished": state.finished,
                    "reused": state.reused,
                    "failed": state.failed,
                    "pending": state.remaining,
                },
                "runs": runs,
            }
        )


def _pause_if_asked(finished: int) -> None:
    """Wait here for a signal after the run that :data:`PAUSE_AFTER_ENV` names."""
    text = os.environ.get(PAUSE_AFTER_ENV)
    if not text:
        return
    count, _, flag = text.partition(":")
    if finished != int(count):
        return
    if flag:
        with open(flag, "w"):
            pass
    while True:  # a signal's handler (^C, SIGTERM) raises out of the sleep
        time.sleep(60.0)


def _respec(outcome: RunOutcome, spec: RunSpec) -> RunOutcome:
    """The outcome of a run, as the answer to another spec with the same key."""
    return replace(outcome, spec=spec)
