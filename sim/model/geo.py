"""Great-circle geometry and a spatial index that answers nearest-point queries exactly.

Points go onto the unit sphere as xyz; the straight-line (chord) distance between two
points there is a strictly increasing function of their great-circle distance, so the
k nearest by chord in a k-d tree are exactly the k nearest by great circle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

# The mean Earth radius geopy uses for great_circle, so that our distances and the
# geopy reference the tests compare against agree to rounding.
EARTH_RADIUS_KM = 6371.009
# 2 R, as the haversine formula's first product (the same float: it is computed first).
_DIAMETER_KM = 2.0 * EARTH_RADIUS_KM


def to_xyz(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Unit-sphere coordinates, one row per point."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    chord = np.asarray(chord, dtype=float)
    km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
    return np.where(np.isfinite(chord), km, np.inf)


def _power_elementwise(base: np.ndarray, exponent: float) -> np.ndarray:
    """``base ** exponent`` element by element through the C library's ``pow``, as Python does.

    ``np.power`` with a scalar exponent of 2 squares instead (``x * x``), which rounds
    differently from ``pow(x, 2.0)`` in about one case in a thousand; with an array of
    exponents it calls ``pow`` for every element, so the array form of a formula gives
    what its scalar form gives, to the bit.
    """
    powered: np.ndarray = np.power(base, np.full(np.shape(base), exponent))
    return powered


def _haversine(
    radians: Callable[[Any], Any],
    sin: Callable[[Any], Any],
    cos: Callable[[Any], Any],
    asin: Callable[[Any], Any],
    sqrt: Callable[[Any], Any],
    power: Callable[[Any, float], Any],
    at_most_one: Callable[[Any], Any],
) -> Callable[[Any, Any, Any, Any], Any]:
    """The haversine formula, written once, over the given math functions.

    Bound to :mod:`math` it is :func:`great_circle_km` (Python floats, the per-call path);
    bound to numpy it is :func:`great_circle_km_array`. Both do the same operations in
    the same order, so where numpy's float64 functions are the C library's (every x86
    CPU without AVX-512, this project's machines) both give the same bits
    (tests/test_geo.py checks it).
    """

    def km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
        p1 = radians(lat1)
        p2 = radians(lat2)
        h = power(sin((p2 - p1) / 2), 2.0) + cos(p1) * cos(p2) * power(
            sin(radians(lon2 - lon1) / 2), 2.0
        )
        return _DIAMETER_KM * asin(at_most_one(sqrt(h)))

    return km


# Haversine distance in km between two points given in degrees, as Python floats: the
# formula bound to math (not wrapped in a function of its own: it runs once per trip).
great_circle_km: Callable[[float, float, float, float], float] = _haversine(
    math.radians, math.sin, math.cos, math.asin, math.sqrt, pow, partial(min, 1.0)
)
_great_circle_km_array = _haversine(
    np.radians, np.sin, np.cos, np.arcsin, np.sqrt, _power_elementwise, partial(np.minimum, 1.0)
)


def great_circle_km_array(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """Haversine distances, element-wise over arrays (broadcast): :func:`great_circle_km`'s."""
    km: np.ndarray = _great_circle_km_array(
        *(np.asarray(x, dtype=float) for x in (lat1, lon1, lat2, lon2))
    )
    return km


class SpatialIndex:
    """k nearest of a fixed set of points, by great-circle distance.

    The k-d tree is built on the first query: checking a scenario builds its network but
    never asks it for the nearest station, and so never imports scipy.spatial (about a
    second of CPU); a run queries it once, in bulk, when it draws its calls.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.size = len(lat)
        self._xyz = to_xyz(lat, lon)
        self._tree: cKDTree | None = None

    def nearest(self, lat: np.ndarray, lon: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and great-circle km of the k nearest points, each row sorted by distance.

        Both results have shape (n, k); when k exceeds the number of points the missing
        columns hold index ``size`` and distance ``inf``, as cKDTree gives them.
        """
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self._xyz)
        k_eff = max(1, k)
        chord, index = self._tree.query(to_xyz(lat, lon), k=k_eff)
        chord = np.asarray(chord).reshape(len(np.atleast_1d(lat)), k_eff)
        index = np.asarray(index).reshape(chord.shape)
        return index.astype(np.int64), chord_to_km(chord)
