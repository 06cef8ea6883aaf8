"""Road distance and travel time: great-circle distance x detour, speed by band and hour.

Road distance is ``gc * detour_factor * (1 + extra * exp(-gc / scale))``: short trips
detour more (the 25-city study's mean detour index is 1.32). It increases strictly with
great-circle distance, so the nearest station by great circle is also nearest by road.

Each rule is written once and comes in two forms: for one Python float (the per-call
path) and for a numpy array (quantities computed for every call before the run). Both do
the same operations in the same order, so they give the same bits where numpy's float64
functions are the C library's (tests/test_travel.py checks it).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from sim.model.scenario import ArrivalPromise, TravelConfig


class Bands:
    """A value by band of distance: band k holds every x with ``limits[k-1] < x <= limits[k]``.

    ``values`` has one more entry than ``limits``: the last band is open-ended.
    """

    __slots__ = ("_limits_array", "_values_array", "band", "values")

    def __init__(self, limits: Sequence[float], values: Sequence[float]) -> None:
        if len(values) != len(limits) + 1:
            raise ValueError(f"{len(limits)} band limits need {len(limits) + 1} values")
        sorted_limits = [float(x) for x in limits]
        self.values = [float(v) for v in values]
        # The band of x: its index in values. A C function (no Python frame): a drive's
        # time looks its band up once per trip.
        self.band: Callable[[float], int] = partial(bisect_left, sorted_limits)
        self._limits_array = np.asarray(sorted_limits, dtype=float)
        self._values_array = np.asarray(self.values, dtype=float)

    def at(self, x: float) -> float:
        """The value of the band that holds ``x``."""
        return self.values[self.band(x)]

    def at_array(self, x: np.ndarray) -> np.ndarray:
        """:meth:`at` for every element (``searchsorted`` on the left is ``bisect_left``)."""
        index = np.searchsorted(self._limits_array, np.asarray(x, dtype=float), side="left")
        values: np.ndarray = self._values_array[index]
        return values


def _road_km(
    gc_km: Any, detour: float, extra: float, scale_km: float, exp: Callable[[Any], Any]
) -> Any:
    """The road-distance formula, over a float (``math.exp``) or an array (``np.exp``)."""
    return gc_km * detour * (1.0 + extra * exp(-gc_km / scale_km))


class TravelModel:
    """Distances and times for one scenario's travel settings."""

    def __init__(self, cfg: TravelConfig) -> None:
        self.detour_factor = cfg.detour_factor
        self.short_extra = cfg.short_trip_detour_extra
        self.short_scale_km = cfg.short_trip_scale_km
        # Only the last band is open-ended (the scenario checks it): the limits are floats.
        self.speed_bands = Bands(
            [b.up_to_km for b in cfg.speed_bands[:-1] if b.up_to_km is not None],
            [b.speed_kmh for b in cfg.speed_bands],
        )
        self.hourly_speed_factor = cfg.hourly_speed_factor
        # Bound once: drive_h runs once per trip.
        self._speed_band = self.speed_bands.band
        self._band_speeds = self.speed_bands.values

    def road_km(self, gc_km: float) -> float:
        """Road km of a trip ``gc_km`` long as the crow flies."""
        km: float = _road_km(
            gc_km, self.detour_factor, self.short_extra, self.short_scale_km, math.exp
        )
        return km

    def road_km_array(self, gc_km: np.ndarray) -> np.ndarray:
        """:meth:`road_km` for every element."""
        km: np.ndarray = _road_km(
            np.asarray(gc_km, dtype=float),
            self.detour_factor,
            self.short_extra,
            self.short_scale_km,
            np.exp,
        )
        return km

    def speed_kmh(self, road_km: float) -> float:
        """Free-flow speed of the band a trip of ``road_km`` falls in."""
        return self.speed_bands.at(road_km)

    def speed_kmh_array(self, road_km: np.ndarray) -> np.ndarray:
        """:meth:`speed_kmh` for every element."""
        return self.speed_bands.at_array(road_km)

    def drive_h(
        self, road_km: float, now_h: float, noise: float, speed_factor: float = 1.0
    ) -> float:
        """Driving time starting at ``now_h``; ``noise`` is this trip's drawn multiplier."""
        band_kmh = self._band_speeds[self._speed_band(road_km)]  # speed_bands.at(road_km)
        speed = band_kmh * self.hourly_speed_factor[int(now_h) % 24] * speed_factor
        return road_km / speed * noise

    def trip(
        self, gc_km: float, start_h: float, noise: float, speed_factor: float = 1.0
    ) -> tuple[float, float]:
        """Road km and driving hours of one trip: :meth:`road_km`, then :meth:`drive_h`."""
        road = self.road_km(gc_km)
        return road, self.drive_h(road, start_h, noise, speed_factor)

    def expected_drive_h(self, road_km: float, now_h: float, speed_factor: float = 1.0) -> float:
        """Driving time without noise: what a dispatcher estimates."""
        return self.drive_h(road_km, now_h, 1.0, speed_factor)


class PromiseTable:
    """Arrival promise (hours from the call) by road-distance band."""

    def __init__(self, bands: tuple[ArrivalPromise, ...]) -> None:
        self.bands = Bands(
            [b.up_to_km for b in bands[:-1] if b.up_to_km is not None], [b.hours for b in bands]
        )

    def arrival_h(self, road_km: float) -> float:
        """The promised hours for a trip of ``road_km`` by road."""
        return self.bands.at(road_km)

    def arrival_h_array(self, road_km: np.ndarray) -> np.ndarray:
        """The promised hours for every element."""
        return self.bands.at_array(road_km)
