"""Named random streams: one numpy generator per random quantity, derived from the seed.

Each stream is keyed by (seed, replication, name), so adding a stream or changing a
policy never shifts the draws of any other quantity (common random numbers).
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_key(name: str) -> int:
    """A stable integer for a stream name (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))


def named_rng(seed: int, name: str, replication: int = 0) -> np.random.Generator:
    """The generator of stream ``name`` in ``replication`` of a run seeded with ``seed``."""
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(replication, stream_key(name)))
    return np.random.default_rng(sequence)
