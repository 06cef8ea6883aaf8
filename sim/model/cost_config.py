"""The cost part of the scenario schema (``cost:``), read only by the cost KPIs."""

from __future__ import annotations

from pydantic import Field

from sim.model.schema import FrozenModel


class CostConfig(FrozenModel):
    """What the network costs a year: its vans, its stations, its contractors, its hotline.

    Read only after a run, by the cost KPIs (:mod:`sim.analysis.costs`): no figure here
    changes what the model does. A van costs its crew (``crew_per_van`` people, each
    paid ``wage_cny_per_year`` plus the employer's ``oncost_share`` of it), the vehicle
    itself (``vehicle_cny_per_year``: depreciation, insurance, upkeep) and fuel per road
    km it drives; a station costs ``station_cny_per_year`` and ``bay_cny_per_year`` for
    each workshop bay; an hour of a hotline agent on duty ``agent_cny_per_h``. A
    contractor's job costs ``contractors.cost_per_job_cny`` (one figure, kept there).
    The wage is the national mean of urban private units (NBS, 2022); the other figures
    are illustrative (docs/kpis.md, "Costs").
    """

    crew_per_van: float = Field(2.0, ge=0, le=100, description="people employed per van")
    wage_cny_per_year: float = Field(65_237.0, ge=0, description="NBS 2022, private units")
    oncost_share: float = Field(0.3, ge=0, le=5, description="employer's social insurance")
    vehicle_cny_per_year: float = Field(60_000.0, ge=0)
    fuel_cny_per_road_km: float = Field(0.8, ge=0)
    station_cny_per_year: float = Field(120_000.0, ge=0)
    bay_cny_per_year: float = Field(30_000.0, ge=0)
    agent_cny_per_h: float = Field(45.0, ge=0)
