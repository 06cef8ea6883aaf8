"""Checks shared by the tests of bad input and faults: one line, the right code, the disk."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"


# A progress line (sim.experiments.runs.progress.progress_line, or the share done of
# calibrate and sensitivity) is printed every few seconds when stderr is not a terminal:
# on a loaded machine one can come before the error line of even a short command. It is
# told apart by its shape, never taken for the error, and never hides a second error.
PROGRESS_LINE = re.compile(
    r"^(?!(error|warning|interrupted|terminated): )[^\n]*: "
    r"(\d+/\d+ runs, \d+ finished|\d+% done, elapsed )"
)


def without_progress(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not progress lines."""
    return [line for line in stderr.splitlines() if not PROGRESS_LINE.match(line)]


def one_error_line(stdout: str, stderr: str, prefix: str = "error: ") -> str:
    """The single line of a failed command, progress lines aside; nothing else is printed."""
    assert "Traceback" not in stdout + stderr, stderr
    assert stdout == "", f"unexpected stdout: {stdout!r}"
    lines = without_progress(stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (hidden ones too) with its bytes: what is on disk."""
    if not path.exists():
        return {}
    if path.is_file():
        return {path.name: path.read_bytes()}
    out = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = Path(folder, name)
            out[full.relative_to(path).as_posix()] = full.read_bytes()
    return out


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m sim`` child: this tree first, a plain console."""
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def popen_as_at_a_terminal(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``args`` with ^C's default action, as a terminal's foreground job has it.

    A process that a non-interactive shell starts in the background (a CI script's ``&``)
    ignores SIGINT, and every child inherits that; a handler set here is reset to the
    default by exec, so a child started while one is set takes SIGINT as at a terminal.
    """
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(args, **kwargs)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


class StoreCounter:
    """Wraps ``ResultStore.write_run`` (through ``monkeypatch``): counts the runs stored, and
    can raise ^C (KeyboardInterrupt) right after some, so that an interruption lands at the
    same run on every machine. ``forget``: modules dropped before each command, as a new
    process would start without them (a planner's policy module)."""

    def __init__(self, monkeypatch: Any, forget: tuple[str, ...] = ()) -> None:
        from sim.experiments.runs.store import ResultStore

        self.stored = 0
        self.interrupt_after: int | None = None
        self.forget = forget
        original = ResultStore.write_run

        def write_run(store: ResultStore, *args: Any, **kwargs: Any) -> None:
            original(store, *args, **kwargs)
            self.stored += 1
            if self.interrupt_after is not None and self.stored >= self.interrupt_after:
                raise KeyboardInterrupt

        monkeypatch.setattr(ResultStore, "write_run", write_run)

    def invoke(self, args: list[str], interrupt_after: int | None = None) -> Any:
        """The command in this process (one worker: every run is stored from here)."""
        import sys

        from typer.testing import CliRunner

        from sim.cli import app

        self.stored, self.interrupt_after = 0, interrupt_after
        for name in self.forget:
            sys.modules.pop(name, None)
        return CliRunner().invoke(app, args)
