"""Writing a fitted demand: a scenario part (YAML) and the prefecture weights beside it (CSV).

The YAML holds one ``demand`` section that validates as it stands, so it can be pasted
into a scenario (or its fields set with ``sim.model.loading.with_fields``). Each fitted
value's 95% interval is written as a comment at the end of its line; the prefecture
weights and their intervals are in the CSV that ``demand.spatial.csv`` names (columns
lat, lon, weight as the scenario reads them, then the rest). Both files are claimed
before the fit (:class:`~sim.outputs.output_file.OutputFile`), and each is written
beside its place and renamed into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sim.analysis.fit_demand import DemandFit, demand_section
from sim.model.scenario import Scenario
from sim.outputs.output_file import OutputFile


def _flow(values: list[float]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _interval_text(low: Any, high: Any, digits: int = 3) -> str:
    return f"95% interval {float(low):.{digits}f} - {float(high):.{digits}f}"


def weights_path(out_yaml: Path) -> Path:
    """Where the prefecture weights go: beside the YAML, ``NAME.prefectures.csv``."""
    return out_yaml.with_name(out_yaml.stem + ".prefectures.csv")


def write_demand_fit(
    fit: DemandFit,
    base: Scenario,
    part: OutputFile,
    weights: OutputFile,
    trace_name: str = "<trace>",
) -> tuple[Path, Path]:
    """Write the demand section to ``part`` and its prefecture weights to ``weights``.

    Both files are claimed by the caller before the fit (:class:`OutputFile`), the
    weights beside the YAML, which names them by their file name.
    """
    columns = ["lat", "lon", "weight", "weight_low", "weight_high", "calls", "adcode", "name",
               "province"]  # fmt: skip
    csv_name = weights.target.name
    section = demand_section(fit, base, csv_name, trace_name)
    demand = CommentedMap()
    for key, value in section.items():
        demand[key] = value
    demand["hour_of_day_profile"] = _flow(section["hour_of_day_profile"])
    demand["day_of_week_profile"] = _flow(section["day_of_week_profile"])
    cpd = fit.calls_per_day
    demand.yaml_add_eol_comment(_interval_text(cpd.low, cpd.high, 1), "calls_per_day")
    for key, table in (
        ("hour_of_day_profile", fit.hour_profile),
        ("day_of_week_profile", fit.weekday_profile),
    ):
        bounds = ", ".join(f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(table["low"], table["high"],
                                                                  strict=True))  # fmt: skip
        demand.yaml_add_eol_comment(f"95% intervals: {bounds}", key)
    for key, table in (("fault_classes", fit.faults), ("segments", fit.segments)):
        if key not in section:
            continue
        items = CommentedSeq([CommentedMap(item) for item in section[key]])
        for item in items:
            if item["name"] in table.index:
                row = table.loc[item["name"]]
                item.yaml_add_eol_comment(_interval_text(row["low"], row["high"]), "share")
        demand[key] = items

    root = CommentedMap(demand=demand)
    root.yaml_set_start_comment(
        f"Demand fitted from {trace_name}: {fit.n_calls} calls over {fit.days:g} days.\n"
        "Fault classes and segments keep the base scenario's other fields.\n"
        f"Prefecture weights (with intervals): {csv_name}"
    )
    yaml = YAML()
    yaml.width = 4096  # keep each profile and its intervals on one line

    def dump(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as handle:
            yaml.dump(root, handle)

    # The weights first: the YAML names them, so it is never in place without them.
    weights.write(lambda tmp: fit.prefectures[columns].to_csv(tmp, index=False))
    return part.write(dump), weights.shown
