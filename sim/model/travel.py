"""Road distance and travel time: great-circle distance x detour, speed by band and hour.

Road distance is ``gc * detour_factor * (1 + extra * exp(-gc / scale))``: short trips
detour more (the 25-city study's mean detour index is 1.32). It increases strictly with
great-circle distance, so the nearest station by great circle is also nearest by road.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from sim.model.scenario import ArrivalPromise, TravelConfig


class TravelModel:
    """Distances and times for one scenario's travel settings."""

    def __init__(self, cfg: TravelConfig) -> None:
        self.detour_factor = cfg.detour_factor
        self.short_extra = cfg.short_trip_detour_extra
        self.short_scale_km = cfg.short_trip_scale_km
        # Only the last band is open-ended (the scenario checks it): the limits are floats.
        self._band_limits = [b.up_to_km for b in cfg.speed_bands[:-1] if b.up_to_km is not None]
        self._band_speeds = [b.speed_kmh for b in cfg.speed_bands]
        self.hourly_speed_factor = cfg.hourly_speed_factor

    def road_km(self, gc_km: float) -> float:
        return (
            gc_km
            * self.detour_factor
            * (1.0 + self.short_extra * math.exp(-gc_km / self.short_scale_km))
        )

    def road_km_array(self, gc_km: np.ndarray) -> np.ndarray:
        gc = np.asarray(gc_km, dtype=float)
        return (
            gc * self.detour_factor * (1.0 + self.short_extra * np.exp(-gc / self.short_scale_km))
        )

    def speed_kmh(self, road_km: float) -> float:
        return self._band_speeds[bisect.bisect_left(self._band_limits, road_km)]

    def drive_h(
        self, road_km: float, now_h: float, noise: float, speed_factor: float = 1.0
    ) -> float:
        """Driving time starting at ``now_h``; ``noise`` is this trip's drawn multiplier."""
        # speed_kmh(road_km), spelt out: the model calls this once per call.
        band = self._band_speeds[bisect.bisect_left(self._band_limits, road_km)]
        speed = band * self.hourly_speed_factor[int(now_h) % 24] * speed_factor
        return road_km / speed * noise

    def trip(
        self, gc_km: float, start_h: float, noise: float, speed_factor: float = 1.0
    ) -> tuple[float, float]:
        """Road km and driving hours of one trip: ``road_km`` then ``drive_h``, in one call.

        The model's hot path makes two trips a call; this is the same arithmetic, in the
        same order, as the two methods, without their three Python calls.
        """
        road = (
            gc_km
            * self.detour_factor
            * (1.0 + self.short_extra * math.exp(-gc_km / self.short_scale_km))
        )
        band = self._band_speeds[bisect.bisect_left(self._band_limits, road)]
        speed = band * self.hourly_speed_factor[int(start_h) % 24] * speed_factor
        return road, road / speed * noise

    def expected_drive_h(self, road_km: float, now_h: float, speed_factor: float = 1.0) -> float:
        """Driving time without noise: what a dispatcher estimates."""
        return self.drive_h(road_km, now_h, 1.0, speed_factor)


class PromiseTable:
    """Arrival promise (hours from the call) by road-distance band."""

    def __init__(self, bands: tuple[ArrivalPromise, ...]) -> None:
        self._limits = [b.up_to_km for b in bands[:-1] if b.up_to_km is not None]
        self._hours = [b.hours for b in bands]

    def arrival_h(self, road_km: float) -> float:
        return self._hours[bisect.bisect_left(self._limits, road_km)]
