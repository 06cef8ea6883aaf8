"""Great-circle distances and the nearest-station index, checked against geopy.

geopy's ``great_circle`` is the reference; the numpy haversine brute force, once shown
to agree with geopy, checks the index on many more points than geopy could scan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geopy.distance import great_circle

from sim import load_scenario
from sim.model.geo import EARTH_RADIUS_KM, SpatialIndex, great_circle_km, great_circle_km_array
from sim.model.network import Network, build_network

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "scenarios" / "dongfeng_light_truck.yaml"
RTOL = 1e-6


def _china_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(18.0, 53.5, n), rng.uniform(73.5, 135.0, n)


def _geopy_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(great_circle((lat1, lon1), (lat2, lon2)).km)


@pytest.fixture(scope="module")
def network() -> Network:
    return build_network(load_scenario(NATIONAL))


def _brute_force_km(net: Network, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(n_points, n_stations) haversine distances."""
    return great_circle_km_array(
        lat[:, None], lon[:, None], net.station_lat[None, :], net.station_lon[None, :]
    )


# --------------------------------------------------------------------------- distances


def test_earth_radius_is_geopys() -> None:
    from geopy import distance

    assert distance.EARTH_RADIUS == EARTH_RADIUS_KM


def test_scalar_distance_agrees_with_geopy() -> None:
    rng = np.random.default_rng(11)
    lat1, lon1 = _china_points(rng, 1500)
    # China-wide pairs, very short pairs (metres) and long global pairs.
    lat2, lon2 = _china_points(rng, 1500)
    lat2[:300] = lat1[:300] + rng.normal(0, 1e-4, 300)
    lon2[:300] = lon1[:300] + rng.normal(0, 1e-4, 300)
    lat2[300:500] = rng.uniform(-89, 89, 200)
    lon2[300:500] = rng.uniform(-180, 180, 200)
    ours = np.array([great_circle_km(*p) for p in zip(lat1, lon1, lat2, lon2, strict=True)])
    ref = np.array([_geopy_km(*p) for p in zip(lat1, lon1, lat2, lon2, strict=True)])
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-9)
    assert ours[300:500].max() > 10_000  # the global pairs really are long


def test_known_distances() -> None:
    assert great_circle_km(34.75, 113.62, 34.75, 113.62) == 0.0
    quarter = great_circle_km(0.0, 0.0, 0.0, 90.0)
    assert quarter == pytest.approx(np.pi / 2 * EARTH_RADIUS_KM, rel=1e-12)
    assert great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    # Beijing - Shanghai is about 1068 km as the crow flies.
    assert great_circle_km(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1068, abs=5)


def test_array_distance_agrees_with_geopy_and_scalar() -> None:
    rng = np.random.default_rng(12)
    lat1, lon1 = _china_points(rng, 1000)
    lat2, lon2 = _china_points(rng, 1000)
    arr = great_circle_km_array(lat1, lon1, lat2, lon2)
    assert arr.shape == (1000,)
    ref = np.array([_geopy_km(*p) for p in zip(lat1, lon1, lat2, lon2, strict=True)])
    np.testing.assert_allclose(arr, ref, rtol=RTOL)
    scalar = np.array([great_circle_km(*p) for p in zip(lat1, lon1, lat2, lon2, strict=True)])
    np.testing.assert_allclose(arr, scalar, rtol=1e-12)
    # Broadcasting against one point, as the surge code uses it.
    one = great_circle_km_array(lat1, lon1, 34.75, 113.62)
    ref_one = np.array([_geopy_km(a, b, 34.75, 113.62) for a, b in zip(lat1, lon1, strict=True)])
    np.testing.assert_allclose(one, ref_one, rtol=RTOL)


# --------------------------------------------------------------------------- the index


def test_nearest_station_agrees_with_geopy_scan(network: Network) -> None:
    rng = np.random.default_rng(2024)
    lat, lon = _china_points(rng, 300)
    index, km = network.nearest_stations(lat, lon, 1)
    assert index.shape == km.shape == (300, 1)
    stations = list(zip(network.station_lat.tolist(), network.station_lon.tolist(), strict=True))
    for i in range(len(lat)):
        dists = [great_circle((lat[i], lon[i]), s).km for s in stations]
        best = int(np.argmin(dists))
        assert index[i, 0] == best, (i, index[i, 0], best)
        assert km[i, 0] == pytest.approx(dists[best], rel=RTOL)


def test_nearest_station_agrees_with_numpy_brute_force(network: Network) -> None:
    rng = np.random.default_rng(2025)
    lat, lon = _china_points(rng, 5000)
    full = _brute_force_km(network, lat, lon)
    index, km = network.nearest_stations(lat, lon, 1)
    np.testing.assert_array_equal(index[:, 0], np.argmin(full, axis=1))
    np.testing.assert_allclose(km[:, 0], full.min(axis=1), rtol=1e-9, atol=1e-9)
    # Through the SpatialIndex directly, too.
    index2, km2 = network.index.nearest(lat, lon, 1)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_array_equal(km2, km)


@pytest.mark.parametrize("k", [2, 8, 20])
def test_k_nearest_are_sorted_and_exact(network: Network, k: int) -> None:
    rng = np.random.default_rng(100 + k)
    lat, lon = _china_points(rng, 2000)
    full = _brute_force_km(network, lat, lon)
    index, km = network.nearest_stations(lat, lon, k)
    assert index.shape == km.shape == (2000, k)
    assert (np.diff(km, axis=1) >= 0).all()
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(km, np.take_along_axis(full, order, axis=1), rtol=1e-9, atol=1e-9)
    # Each reported distance is the distance to the reported station.
    np.testing.assert_allclose(km, np.take_along_axis(full, index, axis=1), rtol=1e-9, atol=1e-9)


def test_k_larger_than_station_count() -> None:
    lat = np.array([30.0, 31.0, 35.0])
    lon = np.array([110.0, 111.0, 115.0])
    idx = SpatialIndex(lat, lon)
    index, km = idx.nearest(np.array([30.1]), np.array([110.1]), 5)
    assert index.shape == km.shape == (1, 5)
    assert index[0, :3].tolist() == [0, 1, 2]
    assert index[0, 3:].tolist() == [3, 3]  # cKDTree's "missing" marker: size
    assert np.isinf(km[0, 3:]).all()
    assert km[0, 0] == pytest.approx(_geopy_km(30.1, 110.1, 30.0, 110.0), rel=RTOL)


def test_network_clamps_k_to_station_count(network: Network) -> None:
    index, km = network.nearest_stations(np.array([34.75]), np.array([113.62]), 10_000)
    assert index.shape == (1, network.n_stations)
    assert np.isfinite(km).all()
    assert sorted(index[0].tolist()) == list(range(network.n_stations))


def test_scalar_query_gives_one_row(network: Network) -> None:
    index, km = network.index.nearest(34.75, 113.62, 3)  # type: ignore[arg-type]
    assert index.shape == km.shape == (1, 3)
    ref = great_circle_km_array(34.75, 113.62, network.station_lat, network.station_lon)
    np.testing.assert_array_equal(index[0], np.argsort(ref)[:3])
