"""What runs in a worker: one task (a run) from its small description, with caches.

A worker is a local process of the pool, a Dask worker, or the driving process itself.
It keeps the scenarios and networks it has built (:func:`cached_network`), runs the
replication, writes its tables into the result store when asked to, and sends back its
KPIs, or its error in plain values.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import signal
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from sim.errors import PolicyFailure
from sim.experiments.runs.keys import code_digest, scenario_digest
from sim.experiments.runs.replication import PolicySpec, run_replication
from sim.experiments.runs.store import TABLE_KINDS, write_table
from sim.model.dispatch import Order
from sim.model.network import Network, build_network
from sim.model.scenario import Scenario

# Networks a worker keeps, most recently used first: a national one is tens of MB, and a
# worker rarely alternates between more points than this.
NETWORK_CACHE_SIZE = 4

_SCENARIOS: dict[str, Scenario] = {}
_NETWORKS: OrderedDict[str, Network] = OrderedDict()


def cached_network(scenario: Scenario, digest: str | None = None) -> Network:
    """The network of ``scenario``, built once per process and kept for its next runs.

    The model never changes a network (stations shut by a surge are the run's own
    state), so one network serves every replication and policy of a point.
    """
    digest = digest or scenario_digest(scenario)
    network = _NETWORKS.get(digest)
    if network is None:
        network = build_network(scenario)
        _NETWORKS[digest] = network
        while len(_NETWORKS) > NETWORK_CACHE_SIZE:
            _NETWORKS.popitem(last=False)
    else:
        _NETWORKS.move_to_end(digest)
    return network


def _cached_scenario(digest: str, text: str) -> Scenario:
    scenario = _SCENARIOS.get(digest)
    if scenario is None:
        scenario = _SCENARIOS[digest] = Scenario.model_validate_json(text)
    return scenario


@dataclass(frozen=True)
class Task:
    """What a worker needs for one run: small, and picklable to any process or machine."""

    key: str
    scenario_json: str
    digest: str
    policy: PolicySpec
    replication: int
    store_root: str | None = None  # write the tables here
    return_tables: bool = False  # or send them back (no store)


@dataclass
class ErrorInfo:
    """An exception raised by a run, in plain values (it travels between processes)."""

    error_type: str
    message: str
    call_id: int | None
    traceback: str
    # The exception itself, kept only when the run happened in this process.
    exception: BaseException | None = None
    # A policy's failure in one line (PolicyFailure), naming policy, replication and call.
    headline: str = ""

    @classmethod
    def of(cls, exc: BaseException, *, keep: bool = False) -> ErrorInfo:
        # A policy that raised is wrapped (PolicyFailure): record what the policy raised.
        inner = exc
        headline = ""
        if isinstance(exc, PolicyFailure):
            headline = " ".join(str(exc).split())
            if exc.__cause__ is not None:
                inner = exc.__cause__
        lines = traceback.format_exception(type(inner), inner, inner.__traceback__)
        return cls(
            error_type=type(inner).__name__,
            message=str(inner).strip().splitlines()[0] if str(inner).strip() else "",
            call_id=failing_call(inner),
            traceback="".join(lines[-12:]),
            exception=exc if keep else None,
            headline=headline,
        )


def failing_call(exc: BaseException) -> int | None:
    """The call a run failed on: the exception's ``call_id`` if it has one, else the
    innermost frame of its traceback that holds a work order (a policy's ``assign``)."""
    call_id = getattr(exc, "call_id", None)
    if isinstance(call_id, int):
        return call_id
    found = None
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, Order) and isinstance(getattr(value, "call", None), int):
                found = value.call
        tb = tb.tb_next
    return found


@dataclass
class TaskResult:
    """What a worker sends back: KPIs, or an error; tables only when asked to."""

    key: str
    kpis: dict[str, float] | None
    hotline_queue_area_h: float
    elapsed_s: float
    error: ErrorInfo | None = None
    calls: pd.DataFrame | None = None
    units: pd.DataFrame | None = None
    agents: pd.DataFrame | None = None
    relocations: pd.DataFrame | None = None  # move-up drives: small, always sent back
    tables_written: bool = False
    host: str = ""
    code: str = ""  # the worker's code digest: a cluster worker may run another version


def execute_task(
    task: Task, progress: Callable[[float], None] | None = None, *, in_process: bool = False
) -> TaskResult:
    """Run one task where this function is called (a worker, or the driving process)."""
    start = time.perf_counter()
    host = f"{platform.node()}:{os.getpid()}"
    try:
        scenario = _cached_scenario(task.digest, task.scenario_json)
        network = cached_network(scenario, task.digest)
        result = run_replication(
            scenario, task.replication, task.policy, network=network, progress=progress
        )
        out = TaskResult(task.key, result.kpis, result.hotline_queue_area_h, 0.0, host=host)
        out.relocations = result.relocations
        if task.store_root is not None:
            for kind in TABLE_KINDS:
                write_table(task.store_root, kind, task.key, getattr(result, kind))
            out.tables_written = True
        elif task.return_tables:
            out.calls, out.units, out.agents = result.calls, result.units, result.agents
        else:
            lean = result.without_tables()
            out.calls, out.units, out.agents = lean.calls, lean.units, lean.agents
        del result
    except Exception as exc:
        out = TaskResult(
            task.key, None, math.nan, 0.0, error=ErrorInfo.of(exc, keep=in_process), host=host
        )
    # A model holds reference cycles (calls under way at the horizon): free them now,
    # before the next run, so that a worker's memory does not grow from run to run.
    gc.collect()
    out.elapsed_s = time.perf_counter() - start
    out.code = code_digest()
    return out


def _watch_parent(parent_pid: int) -> None:
    """End this worker when the process that started it is gone (killed, say).

    A forked worker inherits every file its parent had open, among them its own task
    queue's writing end: it would never see the queue close, and wait forever.
    """
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def init_worker(parent_pid: int) -> None:
    # ^C is the driving process's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM too: a signal to the process group is the driving process's to handle; it
    # kills its workers (SIGKILL) and joins them, and a worker dies with it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A forked worker shares its parent's heap (modules, the network) page by page until
    # it writes to it; the collector's passes over those objects would write to every one
    # and copy every page. Frozen, they are left out of every collection (O(1): the
    # collector's lists are joined, no object is touched).
    gc.freeze()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def lost_result(task: Task, exc: BaseException, message: str) -> TaskResult:
    """The result of a task whose worker could not send one back (it died, say)."""
    error = ErrorInfo(type(exc).__name__, message, None, "")
    return TaskResult(task.key, None, math.nan, 0.0, error=error)
