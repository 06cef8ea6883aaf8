"""What a run's network costs a year, and its parts: KPIs computed after the run.

The figures come from the scenario's ``cost`` block (:class:`sim.model.scenario.CostConfig`)
and ``contractors.cost_per_job_cny``; what varies from run to run (road km driven,
contractor jobs, agent hours on duty) is read from the run's records after the warm-up
and scaled to a year of 365 days. Nothing here feeds back into the model, so adding or
changing a cost never changes a run's records. docs/kpis.md ("Costs") defines each part.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.analysis.kpis import agent_hours
from sim.model.cost_config import CostConfig

DAYS_PER_YEAR = 365.0

COST_PARTS = (
    "cost_crew_cny_per_year",
    "cost_vehicles_cny_per_year",
    "cost_fuel_cny_per_year",
    "cost_stations_cny_per_year",
    "cost_contractors_cny_per_year",
    "cost_hotline_cny_per_year",
)
"""The parts of ``cost_cny_per_year``, in the order the KPIs are reported."""


def van_road_km(calls: pd.DataFrame, warmup_h: float) -> float:
    """Road km the network's vans drove to and from the jobs of calls made after the warm-up.

    The way back is taken as long as the way out (it is exactly so for a van that set
    out from its station and returns there, the common case): twice each job's
    ``road_km``. Contractors' drives are the contractor's, not the network's.
    """
    c = calls[calls["t_call_h"] >= warmup_h]
    by_van = (c["van"].to_numpy() >= 0) & ~c["contractor"].to_numpy(bool)
    km = c["road_km"].to_numpy(float)[by_van]
    return float(2.0 * np.nansum(km))


def cost_kpis(
    cost: CostConfig,
    *,
    n_vans: int,
    n_stations: int,
    workshop_bays: int,
    calls: pd.DataFrame,
    agents: pd.DataFrame,
    relocation_km_per_day: float,
    contractor_cost_cny_per_day: float,
    warmup_h: float,
    horizon_h: float,
) -> dict[str, float]:
    """``cost_cny_per_year`` and its parts (:data:`COST_PARTS`) of one replication.

    Crews, vehicles and stations are fixed by the network; fuel (road km of jobs and
    move-up drives), contractors and agent hours are what the run used after the
    warm-up, per day, times 365.
    """
    days = (horizon_h - warmup_h) / 24.0
    if days <= 0:
        return {name: math.nan for name in ("cost_cny_per_year", *COST_PARTS)}
    per_year = DAYS_PER_YEAR / days
    relocation_km = relocation_km_per_day * days if math.isfinite(relocation_km_per_day) else 0.0
    fuel_km = van_road_km(calls, warmup_h) + relocation_km
    agent_h = float(agent_hours(agents, warmup_h, horizon_h)) if len(agents) else 0.0
    parts = {
        "cost_crew_cny_per_year": n_vans
        * cost.crew_per_van
        * cost.wage_cny_per_year
        * (1.0 + cost.oncost_share),
        "cost_vehicles_cny_per_year": n_vans * cost.vehicle_cny_per_year,
        "cost_fuel_cny_per_year": fuel_km * cost.fuel_cny_per_road_km * per_year,
        "cost_stations_cny_per_year": n_stations * cost.station_cny_per_year
        + workshop_bays * cost.bay_cny_per_year,
        "cost_contractors_cny_per_year": contractor_cost_cny_per_day * DAYS_PER_YEAR,
        "cost_hotline_cny_per_year": agent_h * cost.agent_cny_per_h * per_year,
    }
    return {
        "cost_cny_per_year": float(sum(parts.values())),
        **{k: float(v) for k, v in parts.items()},
    }


__all__ = ["COST_PARTS", "DAYS_PER_YEAR", "cost_kpis", "van_road_km"]
