"""Province outlines and prefecture cells for drawing: matplotlib paths and the caption.

The outlines are read, and points located in them, by :mod:`sim.model.outlines` (network
generation needs them too); this module turns a region's rings into a
:class:`~matplotlib.path.Path` for drawing and holds :data:`OUTLINE_CAPTION`, which
every map drawn on them carries.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from matplotlib.path import Path

from sim.model.outlines import OUTLINES_FILE, Outlines, Region, geometry_region, read_outlines

__all__ = [
    "OUTLINES_FILE",
    "OUTLINE_CAPTION",
    "Outlines",
    "Region",
    "geometry_region",
    "read_outlines",
    "region_path",
]

OUTLINE_CAPTION = (
    "Outlines: DCW-GMT 2.1.1 (Digital Chart of the World), LGPL-3+, simplified; prefecture "
    "cells are Voronoi regions of the seats. Approximate: not a surveyed standard map."
)


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _ring_path(ring: np.ndarray) -> Path:
    codes = np.full(len(ring), Path.LINETO, dtype=Path.code_type)
    codes[0], codes[-1] = Path.MOVETO, Path.CLOSEPOLY
    return Path(ring, codes)


@cache
def region_path(region: Region) -> Path:
    """One compound path of a region for drawing (x = lon, y = lat).

    Exteriors are wound counter-clockwise and holes clockwise, so that matplotlib's
    nonzero fill leaves the holes empty. Cached per region (regions hash by identity).
    """
    pieces: list[np.ndarray] = [
        ring if _signed_area(ring) >= 0 else ring[::-1] for ring in region.exteriors
    ]
    pieces.extend(ring if _signed_area(ring) < 0 else ring[::-1] for ring in region.holes)
    return Path.make_compound_path(*(_ring_path(p) for p in pieces))
