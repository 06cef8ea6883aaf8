"""The national scenario against bare SimPy, at several horizons.

    python -m benchmarks.national [--horizons 30 90 365] [--repeat 3] [--quick]

For each horizon, two fresh subprocesses (so that neither peak memory nor the state of
the allocator carries over from one measurement to the next):

1. end to end: ``sim.experiments.run.run_replication`` of the national scenario, one replication
   (network, call stream, model, call and unit tables, complaints, KPIs), timed once;
   the peak resident memory of the process is read right after it;
2. the model alone, ``Model(scenario, network, stream).run()`` on a drawn stream (timed
   without the drawing and the tables), and the yardstick, bare SimPy doing the same
   number of calls with the same number of events per call (a process per call that
   holds a ``Resource`` and yields timeouts), alternately ``--repeat`` times in the same
   process; the best time of each is kept, since other work on the machine only ever
   makes a run slower.

Events are counted after a run from SimPy's event-id counter and its queue (scheduled
minus still pending), which costs the timed run nothing; ``--quick`` also counts them by
wrapping ``Environment.step`` in a separate run and checks that both counts agree.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import simpy

from sim.experiments.run import run_replication
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


def national(days: float) -> Scenario:
    """The national scenario at ``days``, one replication."""
    scenario = load_scenario(SCENARIO)
    warmup = min(scenario.horizon.warmup_days, days / 2)
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
    """Events processed by ``run()``, counted by wrapping ``Environment.step`` (slow)."""
    original = simpy.Environment.step
    count = 0

    def step(self: simpy.Environment) -> None:
        nonlocal count
        count += 1
        original(self)

    simpy.Environment.step = step  # type: ignore[method-assign]
    try:
        run()
    finally:
        simpy.Environment.step = original  # type: ignore[method-assign]
    # The last step processes the run's ``until`` event, which the id count includes too.
    return count


def events_plan(total: int, calls: int) -> list[int]:
    """Events for each bare call: ``total`` spread as evenly as possible over ``calls``."""
    base, extra = divmod(total, calls)
    # Call i gets one more when the running share of the remainder ticks over.
    return [base + ((i + 1) * extra // calls - i * extra // calls) for i in range(calls)]


def bare_simpy(
    stream: CallStream, plan: list[int], agents: int, horizon_h: float
) -> tuple[float, int]:
    """Bare SimPy doing the stream's calls at their times; seconds of the run, events processed.

    A source process starts one process per call at its time. A call of 6 or more events
    requests a ``Resource`` (an agent), holds it for one timeout, releases it, then yields
    its remaining timeouts; a call planned below 6 events skips the resource (like a
    caller answered at once by the model's counted hotline) and yields 1 or 2 timeouts.
    """
    # Plain Python lists, as idiomatic code would use; built before the clock starts and
    # dropped after it, so that they never weigh on the model's timing (garbage collection).
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
    gc.collect()
    start = time.perf_counter()
    env.run(until=horizon_h)
    seconds = time.perf_counter() - start
    return seconds, events_processed(env)


def _time_model(scenario: Scenario, stream: CallStream, network: Any) -> tuple[float, int]:
    model = Model(scenario, network, stream)
    gc.collect()
    start = time.perf_counter()
    model.run()
    seconds = time.perf_counter() - start
    return seconds, events_processed(model.env)


def measure_end_to_end(days: float) -> dict[str, Any]:
    """One replication end to end, and the peak memory of this (fresh) process."""
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


def measure_model_and_bare(days: float, repeat: int, check_events: bool) -> dict[str, Any]:
    """The model's run and bare SimPy, alternately, in this one process."""
    scenario = national(days)
    start = time.perf_counter()
    network = build_network(scenario)
    network_s = time.perf_counter() - start
    start = time.perf_counter()
    stream = draw_call_stream(scenario, network, 0)
    draw_s = time.perf_counter() - start
    calls = len(stream)

    agents = max(scenario.hotline.agents_by_hour)
    model_s: list[float] = []
    bare_s: list[float] = []
    model_events = bare_events = 0
    for _ in range(repeat):
        seconds, model_events = _time_model(scenario, stream, network)
        model_s.append(seconds)
        plan = events_plan(model_events, calls)
        seconds, bare_events = bare_simpy(stream, plan, agents, scenario.horizon.hours)
        bare_s.append(seconds)

    out: dict[str, Any] = {
        "days": days,
        "calls": calls,
        "model_events": model_events,
        "bare_events": bare_events,
        "model_s": model_s,
        "bare_s": bare_s,
        "network_s": network_s,
        "draw_s": draw_s,
    }
    if check_events:
        model = Model(scenario, network, stream)
        out["model_events_stepped"] = events_by_stepping(model.run)
    return out


def _run_worker(mode: str, days: float, repeat: int, check_events: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.national", f"--{mode}", repr(days)]
    command += ["--repeat", str(repeat)] + (["--check-events"] if check_events else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the benchmark of {days:g} days ({mode}) failed")
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_TAG))
    result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
    return result


def report(results: list[dict[str, Any]]) -> None:
    """The table, the model/bare ratios and how time per call grows with the horizon."""
    header = (
        f"{'horizon':>8} {'calls':>8} {'ev/call':>7} {'bare ev/call':>12} "
        f"{'model calls/s':>13} {'bare calls/s':>12} {'model/bare':>10} "
        f"{'model us/call':>13} {'e2e s':>7} {'e2e us/call':>11} {'peak RSS MB':>11}"
    )
    print(header)
    for r in results:
        calls = r["calls"]
        model_rate = calls / min(r["model_s"])
        bare_rate = calls / min(r["bare_s"])
        print(
            f"{r['days']:>7g}d {calls:>8} {r['model_events'] / calls:>7.2f} "
            f"{r['bare_events'] / calls:>12.2f} {model_rate:>13,.0f} {bare_rate:>12,.0f} "
            f"{model_rate / bare_rate:>10.2f} {1e6 / model_rate:>13.1f} {r['e2e_s']:>7.2f} "
            f"{1e6 * r['e2e_s'] / calls:>11.1f} {r['rss_e2e_mb']:>11.0f}"
        )
    print()
    for r in results:
        print(
            f"{r['days']:g} d: model runs {', '.join(f'{s:.2f}' for s in r['model_s'])} s; "
            f"bare {', '.join(f'{s:.2f}' for s in r['bare_s'])} s; "
            f"network {r['network_s']:.2f} s, draw {r['draw_s']:.2f} s; "
            f"RSS after imports {r['rss_imports_mb']:.0f} MB"
        )
        if "model_events_stepped" in r:
            same = "identical" if r["model_events_stepped"] == r["model_events"] else "DIFFERENT"
            print(
                f"{r['days']:g} d: events counted by stepping {r['model_events_stepped']}, "
                f"by event ids {r['model_events']}: {same}"
            )
    print()
    ratios = ", ".join(
        f"{r['days']:g} d {min(r['bare_s']) / min(r['model_s']):.2f}" for r in results
    )
    print(f"model/bare ratio (calls/s, same calls and events per call): {ratios}")
    first, last = results[0], results[-1]
    model_growth = (min(last["model_s"]) / last["calls"]) / (min(first["model_s"]) / first["calls"])
    e2e_growth = (last["e2e_s"] / last["calls"]) / (first["e2e_s"] / first["calls"])
    print(
        f"time per call {last['days']:g} d / {first['days']:g} d: "
        f"model {model_growth:.2f}, end-to-end {e2e_growth:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--horizons", type=float, nargs="+", help="days (default 30 90 365)")
    parser.add_argument("--repeat", type=int, help="timed model/bare pairs (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny horizons: a smoke test")
    parser.add_argument("--worker-e2e", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker-timing", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--check-events", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)

    if args.worker_e2e is not None:
        print(RESULT_TAG + json.dumps(measure_end_to_end(args.worker_e2e)), flush=True)
        return
    if args.worker_timing is not None:
        result = measure_model_and_bare(args.worker_timing, repeat, args.check_events)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return

    horizons = args.horizons or ([1.0, 2.0] if args.quick else [30.0, 90.0, 365.0])
    print(
        f"national scenario {SCENARIO.name}, 1 replication; Python {platform.python_version()}, "
        f"SimPy {simpy.__version__}; best of {repeat} timed runs each"
    )
    results = []
    for days in horizons:
        sys.stderr.write(f"benchmarking {days:g} days ...\n")
        result = _run_worker("worker-e2e", days, repeat, check_events=False)
        result.update(_run_worker("worker-timing", days, repeat, check_events=args.quick))
        results.append(result)
    report(results)


if __name__ == "__main__":
    main()
