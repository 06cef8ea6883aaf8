"""Regenerate ``double11_stations.csv``: the region's generated network plus hub vans.

    PYTHONPATH=. python scenarios/data/build_double11_stations.py

The stations and vans that the generator gives the four provinces of
``scenarios/double11_logistics_peak.yaml`` for their share of the national demand
weight (``seeds/prefectures.csv``), in whole percent: that share of the national
scenario's stations and vans, every prefecture covered, vans by demand, one per
station at least, seed 20241111. Then one more van at every station of the eight
logistics hub cities, for the peak. Ids are ``<adcode>-<nn>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.model.loading import load_scenario
from sim.model.network import build_network
from sim.model.reference import areas, default_scenario_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "double11_stations.csv"
PEAK = HERE.parent / "double11_logistics_peak.yaml"
SEED = 20241111
# Shanghai, Hangzhou, Jinhua (Yiwu), Suzhou, Jiaxing, Nanjing, Wuxi, Hefei.
HUBS = ("310000", "330100", "330700", "320500", "330400", "320100", "320200", "340100")
EXTRA_VANS_PER_HUB_STATION = 1


def region_share(provinces: tuple[str, ...]) -> float:
    """The provinces' share of the national demand weight."""
    table = areas()
    weight = table["population_weight"]
    return float(weight[table["province"].isin(provinces)].sum() / weight.sum())


def main() -> None:
    peak = load_scenario(PEAK)
    national = load_scenario(default_scenario_path())
    provinces = peak.geography.provinces
    generate = national.network.stations.generate
    assert provinces is not None and generate is not None
    share = region_share(provinces)
    percent = round(100 * share)
    count = round(percent * generate.count / 100)
    total = round(percent * (national.network.vans.total or 0) / 100)
    network_cfg = {
        "stations": {
            "generate": {
                "count": count,
                "coverage_target": 1.0,
                "workshop_bays": generate.workshop_bays,
                "spread_km": generate.spread_km,
            }
        },
        "vans": {"total": total, "allocation": "demand", "min_per_station": 1},
    }
    network = build_network(peak.with_overrides(network=network_cfg, seed=SEED))
    adcode = network.areas["adcode"].to_numpy()[network.station_area]
    number = pd.Series(adcode).groupby(adcode).cumcount().to_numpy() + 1
    hub = np.isin(adcode, HUBS)
    table = pd.DataFrame(
        {
            "id": [f"{a}-{n:02d}" for a, n in zip(adcode, number, strict=True)],
            "lat": network.station_lat,
            "lon": network.station_lon,
            "vans": network.vans_per_station + EXTRA_VANS_PER_HUB_STATION * hub,
            "workshop_bays": network.workshop_bays,
        }
    )
    table.round({"lat": 4, "lon": 4}).to_csv(OUT, index=False, lineterminator="\n")
    print(
        f"region share of the national demand weight {share:.3f} (~{percent}%): {count} stations, "
        f"{total} vans, + {int(hub.sum())} at the hub stations = {int(table['vans'].sum())}; "
        f"wrote {OUT}"
    )


if __name__ == "__main__":
    main()
