"""The version of rescue-sim, in one place: the build reads it, `--version` prints it; and
the digest of the code itself, which changes between two releases too."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

__version__ = "0.1.0"


def package_root() -> Path:
    """The folder of the ``sim`` package."""
    return Path(__file__).resolve().parent


@cache
def code_digest() -> str:
    """SHA-256 of the package's Python source: a run made by other code is not reused,
    and a cost measured on other code is measured again.

    The version number alone would not do: it stays the same through every change made
    between two releases.
    """
    package = package_root()
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
