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
