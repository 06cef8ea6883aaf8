"""The national scenario against bare SimPy: a model/bare ratio that holds from run to run.

    python -m benchmarks.national [--horizons 30 365] [--pairs 9] [--clock cpu|wall]
                                  [--gc on|off] [--no-e2e] [--quick]

The figure this benchmark exists for is the **model/bare ratio**: calls per second of the
model's run (``sim.model.simulation.Model(scenario, network, stream).run()`` on a drawn
stream, without the drawing and the tables) over calls per second of bare SimPy doing
the same calls with the same number of events per call (a process per call that holds a
``Resource`` and yields timeouts). A ratio taken from two runs far apart in time moves
with whatever else the machine is doing; so, for each horizon, in one fresh process:

* the model and bare SimPy run as interleaved pairs, model then bare, ``--pairs`` times;
  each pair gives one ratio, and the report is the **median of the pairwise ratios with
  its interquartile range** (a burst of load from other work slows one or two pairs,
  which the median ignores, instead of tilting a best-of-n on one side);
* both sides are timed with the same clock (``--clock``, default ``cpu``: the process's
  CPU time, which leaves out the time the process waited for a core while other work ran;
  ``wall`` for elapsed time) and with garbage collection treated the same: a full
  ``gc.collect()`` before each timed side, the collector left on during it (``--gc on``,
  as in real use) or switched off (``--gc off``) on both sides alike;
* the events per call of each side are counted after each run from SimPy's event-id
  counter and its queue (scheduled minus still pending), which costs the timed run
  nothing; ``--quick`` also counts them by wrapping the heap pop of the event loops
  (SimPy's ``step`` and the model's ``run_until``) in a separate run and checks that
  both counts agree.

The header names the machine (CPU model, cores, load average at start, and again at the
end). When the IQR of a horizon's ratios is wider than ``--max-iqr`` (default 10%) of
its median, the report says the spread is too wide to conclude.

Unless ``--no-e2e``, each horizon also runs ``sim.experiments.runs.run.run_replication`` once
end to end in another fresh subprocess (network, call stream, model, call and unit
tables, complaints, KPIs), with the peak resident memory of that process.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

import simpy

from benchmarks.measure import load_average, machine, quartiles
from sim.experiments.runs.run import run_replication
from sim.model.demand import CallStream, draw_call_stream
from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.scenario import Scenario
from sim.model.simulation import Model

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
RESULT_TAG = "RESULT "

# The fewest events a bare call can have: the source's timeout, the process's start and
# its end, and one timeout in between.
BARE_MIN_EVENTS = 4
# A call that holds the resource: those three, the request, one timeout and the release.
BARE_RESOURCE_EVENTS = 6

# An IQR wider than this share of the median cannot tell a 10% change from noise.
DEFAULT_MAX_IQR = 0.10

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def national(days: float) -> Scenario:
    """The national scenario at ``days``, one replication."""
    scenario = load_scenario(SCENARIO)
    warmup = min(scenario.horizon.warmup_days, days // 2)  # whole days, as the scenario keeps
    return scenario.with_overrides(horizon={"days": days, "warmup_days": warmup}, replications=1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def events_processed(env: simpy.Environment) -> int:
    """Events an environment has processed: every event scheduled, less those still queued.

    Reads SimPy internals (the id counter and the queue) once the run is over, so that
    the count costs the run nothing.
    """
    eid: Any = env._eid
    queue: list[Any] = env._queue
    return int(next(eid)) - len(queue)


def events_by_stepping(run: Callable[[], object]) -> int:
    """Events processed by ``run()``, counted by wrapping the event loops' heap pop (slow).

    Each processed event is popped once from the queue, by ``Environment.step`` or by
    the model's own loop (:func:`sim.model.engine.run_until`), so both names are wrapped.
    """
    import simpy.core

    from sim.model import engine

    modules = (simpy.core, engine)
    originals = [module.heappop for module in modules]
    original = originals[0]
    count = 0

    def heappop(queue: list[Any]) -> Any:
        nonlocal count
        count += 1
        return original(queue)

    for module in modules:
        module.heappop = heappop  # type: ignore[attr-defined]
    try:
        run()
    finally:
        for module, saved in zip(modules, originals, strict=True):
            module.heappop = saved  # type: ignore[attr-defined]
    # The last step processes the run's ``until`` event, which the id count includes too.
    return count


def events_plan(total: int, calls: int) -> list[int]:
    """Events for each bare call: ``total`` spread as evenly as possible over ``calls``."""
    base, extra = divmod(total, calls)
    # Call i gets one more when the running share of the remainder ticks over.
    return [base + ((i + 1) * extra // calls - i * extra // calls) for i in range(calls)]


def timed(run: Callable[[], object], clock: Callable[[], float], gc_on: bool) -> float:
    """Seconds of ``run()`` on ``clock``, after a full collection, the collector on or off.

    Both sides of a pair go through here, so that they see the same collector: what the
    previous side left behind is collected before the clock starts, and the collector
    runs during the timed run (``gc_on``) or not at all, never on one side only.
    """
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        start = clock()
        run()
        return clock() - start
    finally:
        gc.enable()


def bare_simpy_env(stream: CallStream, plan: list[int], agents: int) -> simpy.Environment:
    """Bare SimPy set up to do the stream's calls at their times (not yet run).

    A source process starts one process per call at its time. A call of 6 or more events
    requests a ``Resource`` (an agent), holds it for one timeout, releases it, then yields
    its remaining timeouts; a call planned below 6 events skips the resource (like a
    caller answered at once by the model's counted hotline) and yields 1 or 2 timeouts.
    """
    # Plain Python lists, as idiomatic code would use; built before the clock starts, as
    # the model's stream is drawn before its clock starts.
    call_times = stream.t_call_h.tolist()
    hold_h = stream.handling_h[:, 0].tolist()
    delay_h = stream.repair_h.tolist()
    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=agents)

    def call(i: int) -> Generator[simpy.Event, Any, None]:
        events = plan[i]
        if events >= BARE_RESOURCE_EVENTS:
            with desk.request() as request:
                yield request
                yield env.timeout(hold_h[i])
            for _ in range(events - BARE_RESOURCE_EVENTS):
                yield env.timeout(delay_h[i])
        else:
            for _ in range(max(1, events - BARE_MIN_EVENTS + 1)):
                yield env.timeout(delay_h[i])

    def source() -> Generator[simpy.Event, Any, None]:
        for i, t in enumerate(call_times):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(call(i))

    env.process(source())
    return env


def measure_pairs(
    days: float, pairs: int, clock_name: str, gc_on: bool, check_events: bool
) -> dict[str, Any]:
    """The model's run and bare SimPy as ``pairs`` interleaved pairs, in this one process."""
    clock = CLOCKS[clock_name]
    scenario = national(days)
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    calls = len(stream)
    agents = max(scenario.hotline.agents_by_hour)
    horizon_h = scenario.horizon.hours

    model_s: list[float] = []
    bare_s: list[float] = []
    model_events: list[int] = []
    bare_events: list[int] = []
    for _ in range(pairs):
        model = Model(scenario, network, stream)
        model_s.append(timed(model.run, clock, gc_on))
        model_events.append(events_processed(model.env))
        del model  # its records would otherwise sit in memory during the bare run

        env = bare_simpy_env(stream, events_plan(model_events[-1], calls), agents)
        bare_s.append(timed(partial(env.run, until=horizon_h), clock, gc_on))
        bare_events.append(events_processed(env))
        del env

    out: dict[str, Any] = {
        "days": days,
        "calls": calls,
        "model_events": model_events,
        "bare_events": bare_events,
        "model_s": model_s,
        "bare_s": bare_s,
    }
    if check_events:
        model = Model(scenario, network, stream)
        out["model_events_stepped"] = events_by_stepping(model.run)
    return out


def measure_end_to_end(days: float) -> dict[str, Any]:
    """One replication end to end (wall clock), and the peak memory of this fresh process."""
    rss_imports = peak_rss_mb()
    scenario = national(days)
    start = time.perf_counter()
    result = run_replication(scenario, 0)
    e2e_s = time.perf_counter() - start
    return {
        "calls": len(result.calls),
        "e2e_s": e2e_s,
        "rss_imports_mb": rss_imports,
        "rss_e2e_mb": peak_rss_mb(),
    }


def _run_worker(
    args: list[str],
    what: str,
    module: str = "benchmarks.national",
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run ``module`` with ``args`` in a fresh process (after ``prefix``, e.g. valgrind);
    the JSON it printed after :data:`RESULT_TAG`."""
    command = [*prefix, sys.executable, "-m", module, *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the benchmark of {what} failed")
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_TAG))
    result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
    return result


def summarise(r: dict[str, Any], max_iqr: float) -> dict[str, Any]:
    """Pairwise ratios of one horizon: median, quartiles, and whether they can conclude."""
    ratios = [b / m for m, b in zip(r["model_s"], r["bare_s"], strict=True)]
    q1, median, q3 = quartiles(ratios)
    return {
        "ratios": ratios,
        "q1": q1,
        "median": median,
        "q3": q3,
        "iqr_share": (q3 - q1) / median,
        "conclusive": (q3 - q1) / median <= max_iqr,
    }


def report(results: list[dict[str, Any]], max_iqr: float, clock: str) -> None:
    """Per-pair times, then one line per horizon: median ratio, IQR, events per call."""
    for r in results:
        for k, (m, b) in enumerate(zip(r["model_s"], r["bare_s"], strict=True), start=1):
            print(
                f"{r['days']:g} d pair {k}: model {m:.3f} s, bare {b:.3f} s, model/bare {b / m:.3f}"
            )
        if "model_events_stepped" in r:
            same = "identical" if r["model_events_stepped"] == r["model_events"][0] else "DIFFERENT"
            print(
                f"{r['days']:g} d: events counted by stepping {r['model_events_stepped']}, "
                f"by event ids {r['model_events'][0]}: {same}"
            )
    print()
    header = (
        f"{'horizon':>8} {'calls':>8} {'pairs':>5} {'model ev/call':>13} {'bare ev/call':>12} "
        f"{'model us/call':>13} {'bare us/call':>12} {'model/bare':>10} {'IQR':>13} "
        f"{'IQR/median':>10}"
    )
    print(f"median of pairwise ratios ({clock} time; us/call are medians too)")
    print(header)
    verdicts = []
    for r in results:
        s = summarise(r, max_iqr)
        calls = r["calls"]
        print(
            f"{r['days']:>7g}d {calls:>8} {len(s['ratios']):>5} "
            f"{statistics.median(r['model_events']) / calls:>13.2f} "
            f"{statistics.median(r['bare_events']) / calls:>12.2f} "
            f"{1e6 * statistics.median(r['model_s']) / calls:>13.1f} "
            f"{1e6 * statistics.median(r['bare_s']) / calls:>12.1f} "
            f"{s['median']:>10.3f} {s['q1']:>6.3f}-{s['q3']:<6.3f} {100 * s['iqr_share']:>9.1f}%"
        )
        if not s["conclusive"]:
            verdicts.append(
                f"{r['days']:g} d: SPREAD TOO WIDE TO CONCLUDE: the IQR is "
                f"{100 * s['iqr_share']:.1f}% of the median (limit {100 * max_iqr:.0f}%); "
                "run more pairs or on a quieter machine"
            )
    print()
    for r in results:
        if "e2e_s" in r:
            print(
                f"{r['days']:g} d end to end: {r['e2e_s']:.2f} s wall "
                f"({1e6 * r['e2e_s'] / r['calls']:.1f} us/call), peak RSS "
                f"{r['rss_e2e_mb']:.0f} MB (after imports {r['rss_imports_mb']:.0f} MB)"
            )
    ratios = ", ".join(f"{r['days']:g} d {summarise(r, max_iqr)['median']:.3f}" for r in results)
    print(f"model/bare ratio (median of pairs, same calls and events per call): {ratios}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = (statistics.median(last["model_s"]) / last["calls"]) / (
            statistics.median(first["model_s"]) / first["calls"]
        )
        print(f"model time per call {last['days']:g} d / {first['days']:g} d: {growth:.2f}")
    for line in verdicts:
        print(line)
    if not verdicts:
        print(f"spread: every IQR within {100 * max_iqr:.0f}% of its median")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--horizons", type=float, nargs="+", help="days (default 30 365)")
    parser.add_argument("--pairs", type=int, help="interleaved model/bare pairs (default 9)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="default cpu")
    parser.add_argument("--gc", choices=("on", "off"), default="on", help="default on")
    parser.add_argument(
        "--max-iqr", type=float, default=DEFAULT_MAX_IQR, help="IQR/median that concludes"
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end runs")
    parser.add_argument("--quick", action="store_true", help="tiny horizons: a smoke test")
    parser.add_argument("--worker-e2e", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker-pairs", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--check-events", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pairs = args.pairs or (3 if args.quick else 9)
    gc_on = args.gc == "on"

    if args.worker_e2e is not None:
        print(RESULT_TAG + json.dumps(measure_end_to_end(args.worker_e2e)), flush=True)
        return
    if args.worker_pairs is not None:
        result = measure_pairs(args.worker_pairs, pairs, args.clock, gc_on, args.check_events)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return

    horizons = args.horizons or ([1.0, 2.0] if args.quick else [30.0, 365.0])
    print(
        f"national scenario {SCENARIO.name}, 1 replication; Python {platform.python_version()}, "
        f"SimPy {simpy.__version__}; {pairs} interleaved model/bare pairs per horizon, "
        f"{args.clock} time, gc {args.gc} on both sides"
    )
    print(machine())
    results = []
    for days in horizons:
        sys.stderr.write(f"benchmarking {days:g} days ...\n")
        worker = ["--worker-pairs", repr(days), "--pairs", str(pairs), "--clock", args.clock]
        worker += ["--gc", args.gc] + (["--check-events"] if args.quick else [])
        result = _run_worker(worker, f"{days:g} days")
        if not args.no_e2e:
            e2e = _run_worker(["--worker-e2e", repr(days)], f"{days:g} days end to end")
            assert e2e["calls"] == result["calls"]
            result.update(e2e)
        results.append(result)
    print(f"load average at end {load_average()}")
    report(results, args.max_iqr, args.clock)


if __name__ == "__main__":
    main()
