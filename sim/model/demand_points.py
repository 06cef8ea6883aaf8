"""The points of a demand CSV (``demand.spatial.csv``, docs/demand.md).

Apart from :mod:`sim.model.demand` so that the network (which reads a travel matrix's
rows to the points, ``point:N``) and ``travel-matrix --osm`` read them without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.errors import ScenarioError
from sim.model.csv_input import number_column, read_csv_table

MAX_DEMAND_POINTS = 1_000_000


def read_demand_points(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes, longitudes and weights of a demand CSV's points, in its order; one
    ScenarioError naming the file, line and column for a mistake."""
    table = read_csv_table(path, "the demand CSV", {"lat", "lon", "weight"}, MAX_DEMAND_POINTS)
    lat = number_column(table, "lat", path, low=-90, high=90).to_numpy()
    lon = number_column(table, "lon", path, low=-180, high=180).to_numpy()
    weight = number_column(table, "weight", path, low=0).to_numpy()
    if weight.sum() <= 0:
        raise ScenarioError("weights must have a positive sum", file=path, field="weight")
    return lat, lon, weight
