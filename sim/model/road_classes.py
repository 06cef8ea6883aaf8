"""Road classes of OpenStreetMap and the ``demand.spatial.roads`` option.

Apart from :mod:`sim.model.roads` (which reads extracts and routes) so that the scenario
schema can name the option without importing the reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import Field, field_validator

from sim.model.schema import FrozenModel, resolve_file

# Road classes by OpenStreetMap's ``highway`` value, most important first.
ROAD_CLASSES = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "service",
)
DEFAULT_CLASSES = ROAD_CLASSES[:5]
# Where trucks break down: weight per km of road by class. Motorways and national roads
# (trunk) carry most of the heavy-goods traffic.
TRUCK_WEIGHT: Mapping[str, float] = {
    "motorway": 4.0,
    "trunk": 3.0,
    "primary": 1.5,
    "secondary": 0.7,
    "tertiary": 0.3,
    "unclassified": 0.1,
    "residential": 0.05,
    "service": 0.02,
}


def check_classes(names: Iterable[str]) -> tuple[str, ...]:
    """The road classes named, in :data:`ROAD_CLASSES` order; ValueError for an unknown one."""
    wanted = [str(n).strip() for n in names]
    unknown = [n for n in wanted if n not in ROAD_CLASSES]
    if unknown:
        raise ValueError(f"unknown road classes {unknown}; known: {', '.join(ROAD_CLASSES)}")
    if not wanted:
        raise ValueError("name at least one road class")
    return tuple(c for c in ROAD_CLASSES if c in wanted)


class RoadDemand(FrozenModel):
    """``demand.spatial.roads``: each call on a road of its prefecture (docs/travel.md).

    A road's chance is its length times its class's weight; classes without a weight
    (or with weight 0) never hold a call.
    """

    osm: Path = Field(description="the OpenStreetMap extract (.osm.pbf) covering the scenario")
    class_weight: dict[str, float] = Field(
        default_factory=lambda: {c: TRUCK_WEIGHT[c] for c in DEFAULT_CLASSES},
        description="weight per km of road, by class",
    )

    _resolve = field_validator("osm")(resolve_file)

    @field_validator("class_weight")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        check_classes(value)
        if any(not w >= 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return value

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes that can hold a call."""
        return check_classes(c for c, w in self.class_weight.items() if w > 0)
