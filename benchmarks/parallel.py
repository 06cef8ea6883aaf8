"""Parallel runs that pay off, and a parent whose memory does not grow with replications.

    python -m benchmarks.parallel [--repeat 3] [--speed-days 30] [--memory-days 365] [--quick]

Two measurements, every one in a fresh process started from here:

1. **Speed-up.** The national scenario, 4 replications, with 1 and with 2 workers,
   ``--repeat`` times each, interleaved (1, 2, 2, 1, 1, 2...) so that a change in the
   machine's load weighs on both alike; medians. Each process reports its start-up
   (Python, imports, scenario, network) and the runs themselves (the engine, from the
   first run to the last KPI); wall and CPU time of the whole process (its workers
   included) are read from ``wait4``.
2. **Memory.** ``rescue-sim run`` of a national year with tables written (``--out``),
   1 and 5 replications, one worker: the process that runs the replications is the
   parent itself, the hardest case. Its peak resident memory is read from ``wait4``.

The machine's load (``os.getloadavg``) is printed before and after, and beside each
measurement: on a shared machine other work slows every run, and a second worker helps
only as far as a second core is free. So, between the runs, a **control** measures what
two processes can get at that moment: the same pure-Python loop twice, one after the
other in one process, then in two processes at once; its speed-up is the most any
parallel run could show there and then (Linux's autogroup scheduling, for one, gives a
terminal session one share of the CPUs however many processes it starts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
QUICK = ROOT / "scenarios" / "quick.yaml"
RESULT_TAG = "RESULT "


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _spawn(command: list[str]) -> tuple[float, float, float, str]:
    """Run ``command``; its wall seconds, CPU seconds (with its children) and peak RSS MB."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile("w+") as stdout:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{stderr}")
        stdout.seek(0)
        output = stdout.read()
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return wall, usage.ru_utime + usage.ru_stime, rss_mb, output


# --------------------------------------------------------------------------- child


def child_speed(workers: int, days: float, replications: int, scenario_path: Path) -> None:
    """One timed run in this process: start-up, then the engine's runs (no tables)."""
    started = time.perf_counter()
    from sim.experiments.runs.arguments import shortened_horizon
    from sim.experiments.runs.run import run
    from sim.experiments.runs.worker import cached_network
    from sim.model.loading import load_scenario

    scenario = load_scenario(scenario_path)
    scenario = scenario.with_overrides(horizon=shortened_horizon(scenario, days))
    cached_network(scenario)  # what the command does before any run
    ready = time.perf_counter()
    result = run(scenario, replications=replications, workers=workers, keep_tables=False)
    done = time.perf_counter()
    kpis = result.kpis_by_replication.to_dict(orient="list")
    payload = {"startup_s": ready - started, "runs_s": done - ready, "kpis": kpis}
    print(RESULT_TAG + json.dumps(payload), flush=True)


def _spin(n: int) -> float:
    """A pure-Python loop of ``n`` steps; the CPU seconds it took."""
    start = time.process_time()
    total = 0
    for i in range(n):
        total += i * i
    return time.process_time() - start


def control_speedup(steps: int) -> float:
    """Wall time of two loops one after the other, over the same two loops at once."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    _spin(steps)
    _spin(steps)
    serial = time.perf_counter() - start
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1000, 1000]))  # both processes started before the clock
        start = time.perf_counter()
        list(pool.map(_spin, [steps, steps]))
        parallel = time.perf_counter() - start
    return serial / parallel


# --------------------------------------------------------------------------- parent


def measure_speed(
    repeat: int, days: float, replications: int, scenario: Path, control_steps: int
) -> dict[str, Any]:
    rows: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    controls: list[float] = []
    order = [1, 2]
    for _ in range(repeat):
        controls.append(control_speedup(control_steps))
        print(f"  control: two loops in two processes {controls[-1]:.2f}x faster", flush=True)
        for workers in order:
            load = _load()
            wall, cpu, _, output = _spawn(
                [
                    sys.executable, "-m", "benchmarks.parallel", "--child-speed", str(workers),
                    "--speed-days", str(days), "--replications", str(replications),
                    "--scenario", str(scenario),
                ]
            )  # fmt: skip
            line = next(x for x in output.splitlines() if x.startswith(RESULT_TAG))
            result = json.loads(line[len(RESULT_TAG) :])
            rows[workers].append({"wall_s": wall, "cpu_s": cpu, "load": load, **result})
            print(
                f"  workers={workers}: wall {wall:6.2f} s, CPU {cpu:6.2f} s, start-up "
                f"{result['startup_s']:5.2f} s, runs {result['runs_s']:6.2f} s (load {load})",
                flush=True,
            )
        order.reverse()
    same = all(r["kpis"] == rows[1][0]["kpis"] for r in rows[1] + rows[2])
    medians = {
        workers: {
            key: statistics.median(r[key] for r in runs)
            for key in ("wall_s", "cpu_s", "startup_s", "runs_s")
        }
        for workers, runs in rows.items()
    }
    controls.append(control_speedup(control_steps))
    print(f"  control: two loops in two processes {controls[-1]:.2f}x faster", flush=True)
    return {
        "rows": rows,
        "medians": medians,
        "identical_kpis": same,
        "control": statistics.median(controls),
    }


def measure_memory(days: float, counts: list[int], scenario: Path) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for replications in counts:
        with tempfile.TemporaryDirectory() as folder:
            load = _load()
            wall, cpu, rss_mb, _ = _spawn(
                [
                    sys.executable, "-m", "sim", "run", str(scenario), "--days", str(days),
                    "--replications", str(replications), "--workers", "1",
                    "--out", str(Path(folder) / "run"),
                ]
            )  # fmt: skip
        out[replications] = {"rss_mb": rss_mb, "wall_s": wall, "cpu_s": cpu}
        print(
            f"  {replications} replication(s): peak RSS {rss_mb:7.0f} MB, wall {wall:6.1f} s "
            f"(load {load})",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each worker count")
    parser.add_argument("--replications", type=int, default=4, help="replications per run")
    parser.add_argument("--speed-days", type=float, default=30.0, help="horizon of the speed run")
    parser.add_argument("--memory-days", type=float, default=365.0, help="horizon, memory run")
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--skip-memory", action="store_true", help="only the speed-up")
    parser.add_argument("--skip-speed", action="store_true", help="only the memory")
    parser.add_argument(
        "--control-steps", type=int, default=20_000_000, help="loop steps of the control"
    )
    parser.add_argument(
        "--quick", action="store_true", help="quick.yaml, tiny horizons: a smoke test"
    )
    parser.add_argument("--child-speed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_speed is not None:
        child_speed(args.child_speed, args.speed_days, args.replications, args.scenario)
        return
    if args.quick:
        args.scenario, args.repeat, args.speed_days, args.memory_days = QUICK, 1, 2.0, 2.0
        args.control_steps = 100_000

    print(f"# parallel runs: {platform.python_version()}, {os.cpu_count()} CPUs, {platform.node()}")
    print(f"load average (1, 5, 15 min) before: {_load()}")
    if not args.skip_speed:
        days, n = args.speed_days, args.replications
        print(f"\n{args.scenario.name}, {days:g} days, {n} replications, 1 and 2 workers:")
        speed = measure_speed(args.repeat, days, n, args.scenario, args.control_steps)
        one, two = speed["medians"][1], speed["medians"][2]
        print(f"\nmedians of {args.repeat}:")
        print("| workers | wall s | CPU s | start-up s | runs s |")
        print("|---:|---:|---:|---:|---:|")
        for workers, m in speed["medians"].items():
            print(
                f"| {workers} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['startup_s']:.2f} "
                f"| {m['runs_s']:.2f} |"
            )
        print(f"speed-up, whole command (wall): {one['wall_s'] / two['wall_s']:.2f}x")
        print(f"speed-up, the runs (engine): {one['runs_s'] / two['runs_s']:.2f}x")
        print(f"CPU of the command, 2 workers / 1: {two['cpu_s'] / one['cpu_s']:.2f}")
        print(f"control, two processes at once (median): {speed['control']:.2f}x")
        print(f"identical KPIs with 1 and 2 workers: {'yes' if speed['identical_kpis'] else 'NO'}")

    if not args.skip_memory:
        print(f"\n{args.scenario.name}, {args.memory_days:g} days, tables written, 1 worker:")
        memory = measure_memory(args.memory_days, [1, 5], args.scenario)
        ratio = memory[5]["rss_mb"] / memory[1]["rss_mb"]
        print(f"peak RSS, 5 replications / 1: {ratio:.2f}")
    print(f"\nload average (1, 5, 15 min) after: {_load()}")


if __name__ == "__main__":
    main()
