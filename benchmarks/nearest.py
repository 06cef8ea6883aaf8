"""Nearest-station search: the spatial index against a geopy scan of every station.

    python -m benchmarks.nearest [--days 30] [--geopy-points 200] [--quick]

The model finds each call's candidate stations before it runs, for all calls in one
bulk query of :class:`sim.model.geo.SpatialIndex` (``Network.nearest_stations``); the time per
call is that query's time over the number of calls. The reference is what the index
replaces: for each call, geopy's ``great_circle`` to every station, sorted. Both must
give the same k nearest stations, in the same order, for every call geopy is run on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from geopy.distance import great_circle

from benchmarks.national import national
from sim.model.demand import draw_call_stream
from sim.model.network import Network, build_network


def geopy_nearest(
    network: Network, lat: np.ndarray, lon: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest stations to each point by a full geopy scan: indices and km."""
    stations = list(zip(network.station_lat.tolist(), network.station_lon.tolist(), strict=True))
    index = np.empty((len(lat), k), dtype=np.int64)
    km = np.empty((len(lat), k))
    for row, point in enumerate(zip(lat.tolist(), lon.tolist(), strict=True)):
        distance = np.array([great_circle(point, station).km for station in stations])
        order = np.argsort(distance, kind="stable")[:k]
        index[row] = order
        km[row] = distance[order]
    return index, km


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=float, help="days of national calls to query (default 30)")
    parser.add_argument("--geopy-points", type=int, help="calls scanned with geopy (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="timed index queries (best kept)")
    parser.add_argument("--quick", action="store_true", help="a few points: a smoke test")
    args = parser.parse_args(argv)
    days = args.days or (2.0 if args.quick else 30.0)
    n_geopy = args.geopy_points or (20 if args.quick else 200)

    scenario = national(days)
    network = build_network(scenario)
    stream = draw_call_stream(scenario, network, 0)
    lat, lon = stream.lat, stream.lon
    k = scenario.dispatch.candidates
    n = len(lat)
    n_geopy = min(n_geopy, n)

    index_s = []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        index, km = network.nearest_stations(lat, lon, k)
        index_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    ref_index, ref_km = geopy_nearest(network, lat[:n_geopy], lon[:n_geopy], k)
    geopy_s = time.perf_counter() - start

    index_per_call = min(index_s) / n
    geopy_per_call = geopy_s / n_geopy
    print(f"{network.n_stations} stations, k = {k} nearest per call")
    print(f"spatial index (bulk, {n} calls in one query): {1e6 * index_per_call:.2f} us per call")
    print(f"geopy great_circle scan ({n_geopy} calls): {1e6 * geopy_per_call:.0f} us per call")
    print(f"speed-up: {geopy_per_call / index_per_call:,.0f}x")

    same = index[:n_geopy] == ref_index
    km_error = float(np.max(np.abs(km[:n_geopy] - ref_km)))
    if same.all():
        print(
            f"identical answers: yes ({n_geopy} calls, the {k} nearest stations in the same "
            f"order; distances agree to {km_error:.1e} km)"
        )
    else:
        rows = np.flatnonzero(~same.all(axis=1))
        print(f"identical answers: NO, {len(rows)} of {n_geopy} calls differ (first: {rows[:5]})")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
