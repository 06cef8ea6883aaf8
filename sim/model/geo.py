"""Great-circle geometry and a spatial index that answers nearest-point queries exactly.

Points go onto the unit sphere as xyz; the straight-line (chord) distance between two
points there is a strictly increasing function of their great-circle distance, so the
k nearest by chord in a k-d tree are exactly the k nearest by great circle.
"""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

import numpy as np
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


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance for one pair; the per-call hot path uses this scalar form.

    The math functions are imported by name, and ``min(1.0, root)`` is spelt out as a
    comparison (the same value, NaN included): a few look-ups and a call fewer.
    """
    p1 = radians(lat1)
    p2 = radians(lat2)
    dp = p2 - p1
    dl = radians(lon2 - lon1)
    h = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
    root = sqrt(h)
    if not root < 1.0:
        root = 1.0
    return _DIAMETER_KM * asin(root)


def great_circle_km_array(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """Haversine distances, element-wise over arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    km: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return km


class SpatialIndex:
    """k nearest of a fixed set of points, by great-circle distance."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.size = len(lat)
        self._tree = cKDTree(to_xyz(lat, lon))

    def nearest(self, lat: np.ndarray, lon: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and great-circle km of the k nearest points, each row sorted by distance.

        Both results have shape (n, k); when k exceeds the number of points the missing
        columns hold index ``size`` and distance ``inf``, as cKDTree gives them.
        """
        k_eff = max(1, k)
        chord, index = self._tree.query(to_xyz(lat, lon), k=k_eff)
        chord = np.asarray(chord).reshape(len(np.atleast_1d(lat)), k_eff)
        index = np.asarray(index).reshape(chord.shape)
        return index.astype(np.int64), chord_to_km(chord)
