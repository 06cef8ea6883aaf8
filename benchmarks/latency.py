"""How long the commands people type most take, as whole processes.

    python -m benchmarks.latency [--runs 11] [--baseline DIR] [--quick] [--national DIR]
                                 [--figures]

Each command runs as its own process, ``python -m sim ...`` (what the ``rescue-sim``
script does, on this tree's code: ``PYTHONPATH`` is set to the repository root), with
its output discarded. The commands run round-robin (one of each, then the next round),
so that a change in the machine's load falls on all of them alike, after one untimed
round that warms the file cache. For each command the report gives the median and the
interquartile range of

* **wall** time, from starting the process to its exit (``time.perf_counter``): what
  a user waits for;
* **CPU** time, user plus system, of the process and its children
  (``resource.getrusage(RUSAGE_CHILDREN)``): what it costs, and the steadier figure on a
  machine that other work shares, since waiting for a core is not counted.

``--baseline DIR`` names another checkout of the repository (say the code before a
change: ``git worktree add /tmp/before <commit>``); each command then runs from both
trees in turn, in the same rounds, and the report adds the ratio of this tree's median
to the baseline's, so that a before/after comparison comes from one run on one load.

``plot`` and ``report`` are timed on a run folder of ``scenarios/quick.yaml`` that this
tree writes first (untimed), each writing into a temporary place of its own
(``--overwrite``), so that every run does the whole work. ``--national DIR`` also times
them on the national month's run folder DIR (``rescue-sim run --out DIR``, written first
if DIR does not exist: two minutes on a quiet machine). ``--figures`` times ``plot`` and
``report`` alone.

The header names the machine (CPU model, cores) and the load average at start and end.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import load_average, machine, quartiles

ROOT = Path(__file__).resolve().parents[1]

# The commands people type most; the national scenario is the default one.
COMMANDS: dict[str, list[str]] = {
    "rescue-sim --help": ["--help"],
    "rescue-sim validate scenarios/quick.yaml": ["validate", "scenarios/quick.yaml"],
    "rescue-sim validate scenarios/dongfeng_light_truck.yaml": [
        "validate",
        "scenarios/dongfeng_light_truck.yaml",
    ],
    "rescue-sim run scenarios/quick.yaml": ["run", "scenarios/quick.yaml"],
}


def folder_commands(name: str, folder: Path, scratch: Path) -> dict[str, list[str]]:
    """``plot`` and ``report`` of the run folder ``folder``, written under ``scratch``."""
    return {
        f"rescue-sim plot ({name})": ["plot", str(folder), "--out", str(scratch / f"{name}-fig"),
                                      "--overwrite"],
        f"rescue-sim report ({name})": ["report", str(folder), "--out",
                                        str(scratch / f"{name}.html"), "--overwrite"],
    }  # fmt: skip


def run_once(root: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one ``python -m sim *args`` on ``root``'s code."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall_s = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit(f"rescue-sim {' '.join(args)} in {root} exited with {done.returncode}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall_s, cpu_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, help="timed runs of each command (default 11)")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--quick", action="store_true", help="--help only, 2 runs: a smoke test")
    parser.add_argument(
        "--national", type=Path, help="also plot and report this national run folder"
    )
    parser.add_argument("--figures", action="store_true", help="time plot and report alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        measure(parser, args, Path(scratch))


def measure(parser: argparse.ArgumentParser, args: argparse.Namespace, scratch: Path) -> None:
    """Time every command (and print the table) with the options ``args``."""
    runs = args.runs or (2 if args.quick else 11)
    commands = {"rescue-sim --help": COMMANDS["rescue-sim --help"]} if args.quick else COMMANDS
    commands = {} if args.figures and not args.quick else dict(commands)
    if not args.quick:
        quick = scratch / "quick"
        run_once(ROOT, ["run", "scenarios/quick.yaml", "--out", str(quick)])
        commands.update(folder_commands("quick", quick, scratch))
    if args.national is not None:
        if not args.national.exists():
            run_once(ROOT, ["run", "--workers", "2", "--out", str(args.national)])
        commands.update(folder_commands("national", args.national.resolve(), scratch))
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        if not (args.baseline / "sim" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: not a checkout of this repository")
        trees["baseline"] = args.baseline.resolve()

    print(
        f"whole-process latency, Python {platform.python_version()}, {runs} runs each, "
        "round-robin after one untimed round"
    )
    for label, root in trees.items():
        print(f"{label}: {root}")
    print(machine())
    for command in commands.values():
        for root in trees.values():
            run_once(root, command)
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(runs):
        for name, command in commands.items():
            for label, root in trees.items():
                wall_s, cpu_s = run_once(root, command)
                wall.setdefault((name, label), []).append(wall_s)
                cpu.setdefault((name, label), []).append(cpu_s)
    print(f"load average at end {load_average()}")
    width = max(len(name) for name in commands)
    print(
        f"{'command':<{width}}  {'tree':<9}  {'wall median s':>13} {'wall IQR s':>13}  "
        f"{'CPU median s':>12} {'CPU IQR s':>13}"
    )
    for name in commands:
        for label in trees:
            w1, w, w3 = quartiles(wall[name, label])
            c1, c, c3 = quartiles(cpu[name, label])
            line = (
                f"{name:<{width}}  {label:<9}  {w:>13.3f} {w1:>6.3f}-{w3:<6.3f}  "
                f"{c:>12.3f} {c1:>6.3f}-{c3:<6.3f}"
            )
            print(line.rstrip())
    if len(trees) > 1:
        print("this tree / baseline, ratio of medians:")
        for name in commands:
            w = statistics.median(wall[name, "this tree"]) / statistics.median(
                wall[name, "baseline"]
            )
            c = statistics.median(cpu[name, "this tree"]) / statistics.median(cpu[name, "baseline"])
            print(f"{name:<{width}}  wall {w:.2f}, CPU {c:.2f}")


if __name__ == "__main__":
    main()
