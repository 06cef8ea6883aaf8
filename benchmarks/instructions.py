"""Instructions per call: the model against bare SimPy, counted by callgrind, by phase.

    python -m benchmarks.instructions [--days 1] [--pairs 5] [--no-time] [--annotate 25]
                                      [--quick]

A time ratio (``benchmarks.national``) moves with the processor, its caches and the load:
bare SimPy's short loop and the model's longer per-call code respond to them differently.
The number of instructions executed does not. So, on one national day (the scenario of
``benchmarks.national``, the same drawn call stream on both sides), in one process under
``valgrind --tool=callgrind``:

* **the model**: ``Model(scenario, network, stream)`` (building), ``run()`` (the run) and
  ``finalize()`` with the unit table (after the run), each counted on its own;
* **bare SimPy** on the same calls with the same events per call
  (:func:`benchmarks.national.bare_simpy_env`): building and run;
* **the model's own instructions per call**: (model run - bare run) / calls: what the
  model adds to the SimPy loop it needs anyway, the figure to make smaller.

Each part is counted between two callgrind client requests (zero the counters, then dump
them under the part's name), issued from Python through a few bytes of machine code
(x86-64 only: elsewhere, or without valgrind, the benchmark says so and stops).

The run is split by phase (the call source, hotline, dispatch, drive, on site, records,
events) by the CPython bytecodes each phase executes, counted with ``sys.settrace`` in a
separate, untraced-by-valgrind process: like instructions, a count that does not depend
on the machine; callgrind cannot see Python functions, so it cannot make this split
itself. ``--annotate N`` prints callgrind's N most costly C functions of the model's run
(inclusive), to see where the interpreter's work goes.

Beside them, unless ``--no-time``, the time ratio of the same day from
``benchmarks.national`` (``--pairs`` interleaved pairs, CPU time), with the load.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import mmap
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from benchmarks.measure import load_average, machine

ROOT = Path(__file__).resolve().parents[1]
RESULT_TAG = "RESULT "

# Callgrind's client requests (valgrind/callgrind.h): VG_USERREQ_TOOL_BASE('C', 'T') + k.
_CALLGRIND_BASE = (ord("C") << 24) | (ord("T") << 16)
ZERO_STATS = _CALLGRIND_BASE + 1
DUMP_STATS_AT = _CALLGRIND_BASE + 3
START_INSTRUMENTATION = _CALLGRIND_BASE + 4

# ``unsigned long request(unsigned long args[6])``: valgrind's client-request sequence for
# amd64 (valgrind.h, VALGRIND_DO_CLIENT_REQUEST_EXPR): rax points at the arguments, rdx
# holds the default result; the four rotations of rdi (128 bits in all, so rdi is
# unchanged) mark the ``xchg rbx, rbx`` that follows as a request. Run natively, it is a
# no-op that returns 0.
_REQUEST_CODE = bytes.fromhex(
    "4889f8"  # mov rax, rdi
    "31d2"  # xor edx, edx
    "48c1c703 48c1c70d 48c1c73d 48c1c733"  # rol rdi, 3; 13; 61; 51
    "4887db"  # xchg rbx, rbx
    "4889d0"  # mov rax, rdx
    "c3"  # ret
)


class Callgrind:
    """Callgrind's client requests from Python: zero the counters, dump them under a name."""

    def __init__(self) -> None:
        if platform.machine() not in ("x86_64", "AMD64") or sys.platform != "linux":
            raise RuntimeError("callgrind client requests are written for x86-64 Linux only")
        prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=prot)
        self._page.write(_REQUEST_CODE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        kind = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong))
        self._request = kind(address)
        self._args = (ctypes.c_ulong * 6)()
        self._names: list[ctypes.Array[ctypes.c_char]] = []  # kept alive while dumped

    def _send(self, request: int, arg: int = 0) -> int:
        """The request's answer: valgrind's under it, 0 natively."""
        self._args[0] = request
        self._args[1] = arg
        answer: int = self._request(self._args)
        return answer

    def start_instrumentation(self) -> None:
        """Instrument from here on (the imports before ran uninstrumented, faster)."""
        self._send(START_INSTRUMENTATION)

    def zero(self) -> int:
        """Start counting a part from zero; returns the request's answer (0 natively)."""
        return self._send(ZERO_STATS)

    def dump(self, name: str) -> int:
        """Write the counts since :meth:`zero` to a file of their own, named ``name``;
        returns the request's answer (0 natively)."""
        text = ctypes.create_string_buffer(name.encode())
        self._names.append(text)
        return self._send(DUMP_STATS_AT, ctypes.addressof(text))


# ------------------------------------------------------------------ the worker under valgrind


def count_parts(days: float) -> dict[str, Any]:
    """The model's and bare SimPy's parts on one drawn stream, each between zero and dump."""
    from benchmarks.national import bare_simpy_env, events_plan, events_processed, national
    from sim.model.demand import draw_call_stream
    from sim.model.network import build_network
    from sim.model.simulation import Model

    callgrind = Callgrind()
    scenario = national(days)
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    agents = max(scenario.hotline.agents_by_hour)
    callgrind.start_instrumentation()

    # Each side starts from an empty collector, as in benchmarks.national: what was
    # allocated before would otherwise decide when the collector runs during a part.
    gc.collect()
    callgrind.zero()
    model = Model(scenario, network, stream)
    callgrind.dump("model building")
    model.run()
    callgrind.dump("model run")
    model.finalize()
    model.unit_log.to_frame()
    callgrind.dump("model after the run")
    events = events_processed(model.env)
    del model

    plan = events_plan(events, len(stream))
    gc.collect()
    callgrind.zero()
    env = bare_simpy_env(stream, plan, agents)
    callgrind.dump("bare building")
    env.run(until=scenario.horizon.hours)
    callgrind.dump("bare run")
    return {"calls": len(stream), "model_events": events, "bare_events": events_processed(env)}


# ------------------------------------------------------------------ phases, by bytecodes

PHASES = ("call source", "hotline", "dispatch", "drive", "on site", "records", "events")

# Where each part of simulation.Model._serve_calls starts: the comments that open its sections.
_CALL_SECTIONS = (
    ("# 2. Dispatch", "dispatch"),
    ("# 3. The van turns out", "drive"),
    ("# 4. On site", "on site"),
)
_MODULE_PHASES = {
    "hotline": "hotline",
    "dispatch": "dispatch",
    "travel": "drive",
    "geo": "drive",
    "travel_matrix": "drive",
    "records": "records",
    "relocation": "dispatch",
    "roster": "dispatch",
}
_SIMULATION_FUNCTIONS = {
    "_serve_calls": "hotline",  # until the first section comment
    "_queue_for_agent": "hotline",
    "_tow": "on site",
    "_van_home": "dispatch",
    "_van_idle": "records",
    "_shift_changes": "hotline",
    "_drive_factor": "drive",
    "_speed_factor_at": "drive",
}


def _call_lines(code: CodeType) -> dict[int, str]:
    """The phase of each line of ``Model._serve_calls``: its section, or records for a write."""
    import inspect

    lines, first = inspect.getsourcelines(code)
    phase = "hotline"
    out: dict[int, str] = {}
    for number, line in enumerate(lines, start=first):
        text = line.strip()
        for marker, name in _CALL_SECTIONS:
            if text.startswith(marker):
                phase = name
        is_write = text.startswith("rec.") or "_log_write(" in text
        out[number] = "records" if is_write else phase
    return out


def phase_of(code: CodeType, line: int, call_lines: dict[int, str]) -> str:
    """The phase a bytecode of ``code`` at ``line`` belongs to."""
    path = Path(code.co_filename)
    if "simpy" in path.parts:
        return "events"
    if path.name == "engine.py":
        qualname = code.co_qualname
        return "call source" if qualname.startswith("CallSource") else "events"
    if path.name == "simulation.py":
        if code.co_name == "_serve_calls":
            return call_lines.get(line, "hotline")
        return _SIMULATION_FUNCTIONS.get(code.co_name, "dispatch")
    if path.parent.name == "dispatch":
        return "dispatch"
    return _MODULE_PHASES.get(path.stem, "events")


def count_bytecodes(run: Callable[[], object]) -> Counter[tuple[CodeType, int]]:
    """CPython bytecodes executed by ``run()``, by (code, line): a deterministic count."""
    counts: Counter[tuple[CodeType, int]] = Counter()

    def local(frame: FrameType, event: str, _: object) -> Any:
        if event == "opcode":
            counts[(frame.f_code, frame.f_lineno)] += 1
        return local

    def start(frame: FrameType, event: str, _: object) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    sys.settrace(start)
    try:
        run()
    finally:
        sys.settrace(None)
    return counts


def bytecodes_by_phase(days: float) -> dict[str, Any]:
    """Bytecodes per phase of the model's run and of bare SimPy's, on one drawn stream."""
    from benchmarks.national import bare_simpy_env, events_plan, events_processed, national
    from sim.model.demand import draw_call_stream
    from sim.model.network import build_network
    from sim.model.simulation import Model

    scenario = national(days)
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    model = Model(scenario, network, stream)
    counts = count_bytecodes(model.run)
    call_lines = _call_lines(Model._serve_calls.__code__)
    phases: Counter[str] = Counter()
    for (code, line), n in counts.items():
        phases[phase_of(code, line, call_lines)] += n
    plan = events_plan(events_processed(model.env), len(stream))
    env = bare_simpy_env(stream, plan, max(scenario.hotline.agents_by_hour))
    bare = count_bytecodes(lambda: env.run(until=scenario.horizon.hours))
    return {"calls": len(stream), "model": dict(phases), "bare": sum(bare.values())}


# ------------------------------------------------------------------ the parent


def _worker(args: list[str], prefix: list[str], what: str) -> dict[str, Any]:
    from benchmarks.national import _run_worker

    return _run_worker(args, what, "benchmarks.instructions", tuple(prefix))


def read_dumps(out_dir: Path) -> dict[str, tuple[int, Path]]:
    """Instructions of each named dump: {name: (Ir, file)}."""
    parts: dict[str, tuple[int, Path]] = {}
    for path in sorted(out_dir.glob("callgrind.out*")):
        text = path.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.MULTILINE)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if trigger and total:
            parts[trigger.group(1).strip()] = (int(total.group(1)), path)
    return parts


def count_instructions(days: float, annotate: int) -> dict[str, Any]:
    """Run the worker under callgrind; the instructions of each part, and the top functions."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={tmp}/callgrind.out",
        ]
        result = _worker(["--worker-count", repr(days)], prefix, "instructions")
        dumps = read_dumps(Path(tmp))
        result["parts"] = {name: ir for name, (ir, _) in dumps.items()}
        if annotate and "model run" in dumps and shutil.which("callgrind_annotate"):
            done = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", str(dumps["model run"][1])],
                capture_output=True,
                text=True,
                check=False,
            )
            rows = [x for x in done.stdout.splitlines() if re.match(r"^\s*[\d,]+ \(", x)]
            result["annotate"] = rows[: annotate + 1]
    return result


def report(counts: dict[str, Any], phases: dict[str, Any] | None, timing: Any) -> None:
    """Instructions per call by part, the model's own, bytecodes by phase, the time ratio."""
    calls = counts["calls"]
    parts = counts["parts"]
    print(
        f"{calls} calls; events per call: model {counts['model_events'] / calls:.2f}, "
        f"bare {counts['bare_events'] / calls:.2f}"
    )
    print(f"{'part':<22} {'instructions':>14} {'per call':>10}")
    for name, ir in parts.items():
        print(f"{name:<22} {ir:>14,} {ir / calls:>10,.0f}")
    own = (parts["model run"] - parts["bare run"]) / calls
    print(f"model's own instructions per call (model run - bare run): {own:,.0f}")
    print(f"model run / bare run (instructions): {parts['model run'] / parts['bare run']:.3f}")
    if timing is not None:
        print(
            f"time ratio bare/model (benchmarks.national, {len(timing['ratios'])} pairs, CPU): "
            f"{timing['median']:.3f} (IQR {timing['q1']:.3f}-{timing['q3']:.3f}); "
            f"instructions bare/model {parts['bare run'] / parts['model run']:.3f}"
        )
    if phases is not None:
        model = phases["model"]
        total = sum(model.values())
        print()
        print(f"the run by phase, in CPython bytecodes per call ({phases['calls']} calls)")
        for name in PHASES:
            n = model.get(name, 0)
            print(f"  {name:<12} {n / phases['calls']:>8.1f}  {100 * n / total:>5.1f}%")
        print(f"  {'model':<12} {total / phases['calls']:>8.1f}")
        print(f"  {'bare SimPy':<12} {phases['bare'] / phases['calls']:>8.1f}")
    for row in counts.get("annotate", []):
        print(row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=float, default=1.0, help="horizon in days (default 1)")
    parser.add_argument("--pairs", type=int, default=5, help="model/bare pairs for the time ratio")
    parser.add_argument("--no-time", action="store_true", help="skip the time ratio")
    parser.add_argument("--no-phases", action="store_true", help="skip the bytecode split")
    parser.add_argument("--annotate", type=int, default=0, help="top N C functions of the run")
    parser.add_argument("--quick", action="store_true", help="a quarter day, 3 pairs: a smoke test")
    parser.add_argument("--worker-count", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker-phases", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_count is not None:
        print(RESULT_TAG + json.dumps(count_parts(args.worker_count)), flush=True)
        return
    if args.worker_phases is not None:
        print(RESULT_TAG + json.dumps(bytecodes_by_phase(args.worker_phases)), flush=True)
        return

    days = 0.25 if args.quick else args.days
    pairs = 3 if args.quick else args.pairs
    print(f"national scenario, {days:g} d, 1 replication; Python {platform.python_version()}")
    print(machine())
    counts = count_instructions(days, args.annotate)
    phases = None
    if not args.no_phases:
        phases = _worker(["--worker-phases", repr(days)], [], "bytecodes by phase")
    timing = None
    if not args.no_time:
        from benchmarks.national import _run_worker, summarise

        pair_args = ["--worker-pairs", repr(days), "--pairs", str(pairs)]
        timing = summarise(_run_worker(pair_args, f"{days:g} days"), 1.0)
    print(f"load average at end {load_average()}")
    report(counts, phases, timing)


if __name__ == "__main__":
    main()
