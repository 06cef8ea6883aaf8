"""Suite-wide options."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# The property tests draw the same examples on every run, so that a red suite is red again
# when rerun, on any machine. HYPOTHESIS_PROFILE=explore draws new ones (and keeps the ones
# that failed in .hypothesis/ to try first next time): use it to look for new failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/trace.json from the current code (a deliberate change)",
    )


# The longest tests, longest first (from `--durations`): pytest-xdist hands each worker a
# run of tests in collection order and lets an idle worker take the end of another's
# queue, so that long tests started first leave short ones for the end and neither core
# waits long for the other. A whole module when its tests share a module fixture (moving
# only some of them would make the fixture twice). Others keep their order, after these.
LONGEST_FIRST = (
    "tests/test_input_fuzz.py",
    "tests/test_frontier.py",
    "tests/test_theory.py",
    "tests/test_instructions_benchmark.py::test_instructions_benchmark_counts_every_part",
    "tests/test_report.py",
    "tests/test_properties.py",
    "tests/test_precision.py",
    "tests/test_notebooks.py",
    "tests/test_calibration.py",
    "tests/test_parallel_benchmark.py",
    "tests/test_fitting_folders.py",
    "tests/test_optimise.py",
    "tests/test_calibrate.py",
    "tests/test_policy_baselines.py",
    "tests/test_policies.py",
    "tests/test_command_resume.py",
    "tests/test_sensitivity.py",
    "tests/test_custom_policy_doc.py",
    "tests/test_replay.py",
    "tests/test_optimise_folder.py",
)


def _rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: each module's own order is kept
