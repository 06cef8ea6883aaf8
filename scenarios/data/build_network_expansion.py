"""Regenerate ``network_expansion_stations.csv``: the national network plus 50 stations.

    PYTHONPATH=. python scenarios/data/build_network_expansion.py [--calls CALLS.parquet]

1. The baseline: the stations and vans that ``build_network`` generates for
   ``scenarios/dongfeng_light_truck.yaml``, written with ids ``<adcode>-<nn>``.
2. The baseline is run (its own horizon and replications, ``nearest_station``) and its
   late arrivals are counted by prefecture: calls after the warm-up whose van was not on
   site within the arrival promise (``arrival_promise_met`` false; deadlines that had
   not passed at the horizon do not count, as in docs/kpis.md).
3. Each of the ``NEW_STATIONS`` prefectures with most late arrivals gets one station
   ``<adcode>-new`` with ``NEW_VANS`` vans and the generator's bays, placed from the
   prefecture seat towards the median position of its late calls, at most
   ``MAX_OFFSET_KM`` out (a station stays near the city it serves), and pulled back
   towards the seat while it lies outside the seat's province outline (late calls of a
   coastal city can lie at sea).

``--calls`` reuses the call table of a baseline run already made (``rescue-sim run
--out DIR`` writes ``DIR/calls.parquet``) instead of running it again.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from sim.experiments.runs.run import run
from sim.model.loading import load_scenario
from sim.model.network import KM_PER_DEGREE, build_network
from sim.model.outlines import read_outlines
from sim.model.reference import default_scenario_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "network_expansion_stations.csv"
NEW_STATIONS = 50
NEW_VANS = 2
MAX_OFFSET_KM = 20.0
PULL_BACK = 0.1  # share of the offset given up per step while a station is outside


def baseline_stations() -> pd.DataFrame:
    """Step 1: the generated national network as a stations table."""
    network = build_network(load_scenario(default_scenario_path()))
    adcode = network.areas["adcode"].to_numpy()[network.station_area]
    number = pd.Series(adcode).groupby(adcode).cumcount().to_numpy() + 1
    return pd.DataFrame(
        {
            "id": [f"{a}-{n:02d}" for a, n in zip(adcode, number, strict=True)],
            "lat": network.station_lat,
            "lon": network.station_lon,
            "vans": network.vans_per_station,
            "workshop_bays": network.workshop_bays,
        }
    )


def late_calls(calls: pd.DataFrame | None) -> tuple[pd.DataFrame, float]:
    """Step 2: the baseline's late arrivals after the warm-up, and the days they cover."""
    scenario = load_scenario(default_scenario_path())
    if calls is None:
        calls = run(scenario, workers=2).calls
    warmup_h = scenario.horizon.warmup_days * 24.0
    counted = calls[calls["t_call_h"] >= warmup_h]
    late = counted[counted["arrival_promise_met"].eq(False).fillna(False).to_numpy(bool)]
    replications = counted["replication"].nunique()
    days = (scenario.horizon.days - scenario.horizon.warmup_days) * replications
    return late, days


def new_stations(late: pd.DataFrame, bays: int) -> pd.DataFrame:
    """Step 3: one station in each prefecture with most late arrivals."""
    seats = load_scenario(default_scenario_path())
    areas = build_network(seats).areas.set_index("adcode")
    lat_of, lon_of = areas["lat"].to_dict(), areas["lon"].to_dict()
    counts = late.groupby("adcode").size().sort_values(ascending=False, kind="stable")
    outlines = read_outlines()
    rows = []
    for adcode in counts.index[:NEW_STATIONS]:
        seat_lat, seat_lon = float(lat_of[adcode]), float(lon_of[adcode])
        mine = late[late["adcode"] == adcode]
        # Local flat offsets (km) are exact enough within 20 km of the seat.
        km_per_lon = KM_PER_DEGREE * math.cos(math.radians(seat_lat))
        north_km = (float(mine["lat"].median()) - seat_lat) * KM_PER_DEGREE
        east_km = (float(mine["lon"].median()) - seat_lon) * km_per_lon
        scale = min(1.0, MAX_OFFSET_KM / max(math.hypot(north_km, east_km), 1e-9))
        # Late calls of a coastal city can lie at sea: pull the station back towards the
        # seat until it stands inside the seat's province.
        province = outlines.province(str(adcode))
        while scale > 0 and not province.contains(
            seat_lat + north_km * scale / KM_PER_DEGREE, seat_lon + east_km * scale / km_per_lon
        )[0]:
            scale = max(0.0, scale - PULL_BACK)
        rows.append(
            {
                "id": f"{adcode}-new",
                "lat": seat_lat + north_km * scale / KM_PER_DEGREE,
                "lon": seat_lon + east_km * scale / km_per_lon,
                "vans": NEW_VANS,
                "workshop_bays": bays,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=Path, help="calls.parquet of a baseline run")
    args = parser.parse_args()
    base = baseline_stations()
    late, days = late_calls(pd.read_parquet(args.calls) if args.calls else None)
    counts = late.groupby("adcode").size().sort_values(ascending=False, kind="stable")
    share = counts.iloc[:NEW_STATIONS].sum() / counts.sum()
    print(
        f"baseline: {len(base)} stations, {int(base['vans'].sum())} vans; "
        f"{len(late) / days:.0f} late arrivals a day, {share:.0%} of them in the "
        f"{NEW_STATIONS} prefectures that get a station"
    )
    names = build_network(load_scenario(default_scenario_path())).areas.set_index("adcode")
    print("most late:", ", ".join(names.loc[counts.index[:8], "name"]))
    table = pd.concat([base, new_stations(late, int(base["workshop_bays"].iloc[0]))])
    table.round({"lat": 4, "lon": 4}).to_csv(OUT, index=False, lineterminator="\n")
    added = table["id"].str.endswith("-new")
    vans = int(table["vans"].sum())
    print(f"wrote {OUT}: {len(table)} stations ({int(added.sum())} new), {vans} vans")


if __name__ == "__main__":
    main()
