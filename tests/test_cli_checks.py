"""The checks the tests of bad input rely on tell a progress line from an error line.

On a loaded machine a command's progress line (every few seconds when stderr is not a
terminal) can come before its one error line: a test must pass whatever the load, and
must still fail on a second error line or on an error line that looks like progress.
"""

from __future__ import annotations

import pytest
from cli_checks import one_error_line, without_progress

from sim.experiments.runs.progress import ProgressState, progress_line

RUNS = progress_line(
    ProgressState(total=2, elapsed_s=5.2),
    "quick_henan x2",
)
SHARE = "calibrating x2: 40% done, elapsed 6s, ETA 9s"
ERROR = "error: policy 'p:Boom' raised in assign() on call 3 (replication 0): ValueError: x"


def test_the_progress_lines_have_the_shape_the_check_knows() -> None:
    assert RUNS.startswith("quick_henan x2: 0/2 runs, 0 finished")
    assert without_progress(f"{RUNS}\n{SHARE}\n{ERROR}\n") == [ERROR]


def test_a_progress_line_before_the_error_line_is_not_an_error_line() -> None:
    assert one_error_line("", f"{RUNS}\n{ERROR}\n") == ERROR
    assert one_error_line("", f"{SHARE}\n{RUNS}\n{ERROR}\n") == ERROR


def test_two_error_lines_or_an_error_shaped_like_progress_still_fail() -> None:
    with pytest.raises(AssertionError):
        one_error_line("", f"{RUNS}\n{ERROR}\n{ERROR}\n")
    with pytest.raises(AssertionError):
        one_error_line("", f"error: 1 of 2 runs failed\n{ERROR}\n")
    looks_like_progress = "error: x: 1/2 runs, 1 finished, 0 failed"
    assert one_error_line("", looks_like_progress + "\n") == looks_like_progress
    with pytest.raises(AssertionError):
        one_error_line("", f"{RUNS}\n")  # progress alone is no error line
