"""The folder ``rescue-sim frontier --out DIR`` writes, its figure and its report section.

* ``frontier.csv``: one row per fleet size: vans, stations, ``cost_cny_per_year`` and
  every KPI with its 95% interval on the confirmation streams, the KPI's paired step
  from the next smaller fleet (``step_diff``, ``step_diff_low``, ``step_diff_high``).
* ``answers.csv``: for each target, the smallest fleet whose lower bound meets it, its
  cost, and the paired difference to the next smaller fleet.
* ``points/vans_N/stations.csv`` and ``points/vans_N/scenario.yaml``: each point's
  network, and the scenario on it with the confirmation seed and replications:
  ``rescue-sim run points/vans_N/scenario.yaml`` reproduces its row of frontier.csv.
* ``kpis_by_replication.csv`` (confirmation runs), ``history.csv`` (every design of
  every point's search), ``figures/frontier.png``, ``frontier.json`` (what was asked,
  the knee, the timings; it marks a frontier folder), and ``store/``.

The folder is written as a unit (:mod:`sim.outputs.output_folder`).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpi_catalogue import format_kpi, kpi_entry
from sim.experiments.design.frontier import COST_KPI, FrontierResult, knee_index
from sim.outputs.design_folder import PAGE_CSS, html_table, scenario_yaml
from sim.outputs.output_folder import OutDir, claimed_folder
from sim.outputs.report import figure_png
from sim.outputs.run_folder import _versions

MARKER = "frontier.json"
KNEE_METHOD = (
    "Kneedle (Satopaa et al. 2011) without smoothing: cost and KPI scaled to [0, 1], "
    "the point farthest above the chord from the first point to the last"
)


def point_dir(vans: int) -> str:
    """A point's folder inside ``points/``."""
    return f"vans_{vans}"


def write_frontier_files(
    result: FrontierResult, folder: Path, scenario_path: str | Path | None = None
) -> None:
    """Every file of the frontier folder (see the module docstring), into ``folder``."""
    table = result.table()
    table.to_csv(folder / "frontier.csv", index=False, lineterminator="\n")
    result.answers().to_csv(folder / "answers.csv", index=False, lineterminator="\n")
    confirm = result.scenario.with_overrides(
        seed=result.confirm_seed, replications=result.confirm_replications
    )
    by_rep = []
    for point in result.points:
        where = folder / "points" / point_dir(point.vans)
        where.mkdir(parents=True)
        (where / "stations.csv").write_text(result.stations_csv(point), encoding="utf-8")
        comment = (
            f"{result.scenario.name}: the frontier's network of {point.vans} vans, on the\n"
            f"confirmation streams (seed {result.confirm_seed}); 'rescue-sim run scenario.yaml'\n"
            "reproduces its row of frontier.csv."
        )
        text = scenario_yaml(confirm, "stations.csv", comment)
        (where / "scenario.yaml").write_text(text, encoding="utf-8")
        by_rep.append(point.confirm_kpis.assign(vans=point.vans))
    kpis = pd.concat(by_rep, ignore_index=True)
    kpis.insert(0, "vans", kpis.pop("vans"))
    kpis.to_csv(folder / "kpis_by_replication.csv", index=False, lineterminator="\n")
    result.history.to_csv(folder / "history.csv", index=False, lineterminator="\n")
    knee = result.points[result.knee()].vans
    summary: dict[str, Any] = {
        "scenario_name": result.scenario.name,
        "scenario_file": str(scenario_path) if scenario_path is not None else None,
        "kpi": result.kpi,
        "targets": list(result.targets),
        "fleets": [p.vans for p in result.points],
        "knee_vans": knee,
        "knee_method": KNEE_METHOD,
        "search_seed": result.scenario.seed,
        "search_replications": result.scenario.replications,
        "days": result.scenario.horizon.days,
        "confirm_seed": result.confirm_seed,
        "confirm_replications": result.confirm_replications,
        "evaluations": int(sum(p.evaluations for p in result.points)),
        "stop_reasons": {str(p.vans): p.stop_reason for p in result.points},
        "spec": result.spec.model_dump(mode="json"),
        "elapsed_s": result.elapsed_s,
        "timings_s": result.timings_s,
        "versions": _versions(),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    (folder / MARKER).write_text(text + "\n", encoding="utf-8")
    (folder / "figures").mkdir(exist_ok=True)
    (folder / "figures" / "frontier.png").write_bytes(frontier_png(folder))


def write_frontier(
    result: FrontierResult,
    out_dir: OutDir,
    scenario_path: str | Path | None = None,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
) -> Path:
    """Write the frontier folder as a unit (``out_dir``: a path or a claimed folder)."""
    with claimed_folder(out_dir, overwrite) as folder:
        write_frontier_files(result, folder.staging, scenario_path)
        return folder.commit(kind="frontier", command=command, seed=result.confirm_seed)


def is_frontier_folder(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def frontier_figure(
    table: pd.DataFrame,
    kpi: str,
    targets: Sequence[float],
    answers: pd.DataFrame | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """The KPI against the yearly cost (top axis: vans), with its 95% band on the
    confirmation streams, the targets as lines, each target's answer and the knee marked."""
    entry = kpi_entry(kpi)
    scale = 100.0 if entry.share else 1.0
    cost = table[COST_KPI].to_numpy(float) / 1e6
    mean = table[kpi].to_numpy(float) * scale
    low = table[f"{kpi}_low"].to_numpy(float) * scale
    high = table[f"{kpi}_high"].to_numpy(float) * scale
    fig = Figure(figsize=(8, 5), constrained_layout=True)
    ax = fig.add_subplot()
    ax.fill_between(cost, low, high, color="tab:blue", alpha=0.2, label="95% interval")
    ax.plot(cost, mean, "o-", color="tab:blue", label=f"{kpi} (confirmation runs)")
    for vans, x, y in zip(table["vans"], cost, mean, strict=True):
        ax.annotate(f"{int(vans)}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    for target in targets:
        ax.axhline(target * scale, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"target {format_kpi(kpi, target)}", (cost[0], target * scale), fontsize=8)
    if answers is not None:
        met = answers.dropna(subset=["vans"])
        for n, vans in enumerate(met["vans"]):
            k = int(np.flatnonzero(table["vans"].to_numpy() == int(vans))[0])
            label = "fewest vans meeting a target" if n == 0 else None
            ax.plot(
                cost[k],
                mean[k],
                "s",
                color="tab:green",
                markersize=9,
                fillstyle="none",
                label=label,
            )
    knee = knee_index(cost, mean)
    ax.plot(cost[knee], mean[knee], "*", color="tab:red", markersize=14, label="knee (Kneedle)")
    ax.set_xlabel("yearly cost, million CNY (points labelled with their vans)")
    ax.set_ylabel(f"{kpi} ({entry.axis_label})")
    ax.set_title(title or "Cost-service frontier: each point optimised, confirmed on fresh streams")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def frontier_png(folder: str | Path) -> bytes:
    """The folder's figure as PNG bytes, drawn from its CSV files."""
    folder = Path(folder)
    summary = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    table = pd.read_csv(folder / "frontier.csv")
    answers = pd.read_csv(folder / "answers.csv")
    return figure_png(frontier_figure(table, summary["kpi"], summary["targets"], answers))


def frontier_section_html(folder: str | Path) -> str:
    """The frontier's section of ``rescue-sim report``: answers, table, figure."""
    folder = Path(folder)
    summary = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    kpi = str(summary["kpi"])
    table = pd.read_csv(folder / "frontier.csv")
    answers = pd.read_csv(folder / "answers.csv")

    def interval(mean: Any, low: Any, high: Any, name: str) -> str:
        if pd.isna(mean):
            return "-"
        return f"{format_kpi(name, mean)} [{format_kpi(name, low)}, {format_kpi(name, high)}]"

    def cny(value: Any) -> str:
        return "-" if pd.isna(value) else f"{float(value) / 1e6:,.1f} M"

    shown = pd.DataFrame(
        {
            "vans": table["vans"],
            "stations": table["stations"],
            "cost CNY/year": [cny(v) for v in table[COST_KPI]],
            kpi: [
                interval(m, lo, hi, kpi)
                for m, lo, hi in zip(
                    table[kpi], table[f"{kpi}_low"], table[f"{kpi}_high"], strict=True
                )
            ],
            "step from smaller fleet": [
                "-"
                if pd.isna(m)
                else f"{format_kpi(kpi, m, signed=True)} [{format_kpi(kpi, lo, signed=True)}, "
                f"{format_kpi(kpi, hi, signed=True)}]"
                for m, lo, hi in zip(
                    table["step_diff"], table["step_diff_low"], table["step_diff_high"], strict=True
                )
            ],
        }
    )
    said = pd.DataFrame(
        {
            "target": [format_kpi(kpi, t) for t in answers["target"]],
            "fewest vans": ["not reached" if pd.isna(v) else str(int(v)) for v in answers["vans"]],
            kpi: [
                interval(r.get("mean"), r.get("low"), r.get("high"), kpi)
                for r in answers.to_dict("records")
            ],
            "cost CNY/year": [cny(v) for v in answers.get("cost_cny_per_year", [])],
        }
    )
    png = base64.b64encode(frontier_png(folder)).decode("ascii")
    text = (
        f"{len(table)} fleet sizes, each the optimiser's best allocation (search: seed "
        f"{summary['search_seed']} x {summary['search_replications']} replications of "
        f"{summary['days']:g} days, common to every point); the values below are from "
        f"fresh streams (seed {summary['confirm_seed']} x {summary['confirm_replications']}). "
        f"Knee: {summary['knee_vans']} vans, by {summary['knee_method']}."
    )
    return "\n".join(
        [
            "<h2>Cost-service frontier</h2>",
            f"<p>{html.escape(text)}</p>",
            "<h3>Fewest vans for each target (95% lower bound at or above it)</h3>",
            html_table(said),
            "<h3>Frontier</h3>",
            html_table(shown),
            f'<figure id="frontier"><img alt="frontier" src="data:image/png;base64,{png}">'
            "<figcaption>The KPI against the yearly cost, 95% band; dotted: targets; squares: "
            "each target's answer; star: the knee.</figcaption></figure>",
        ]
    )


def frontier_report_html(folder: str | Path) -> str:
    """The report page of a frontier folder."""
    summary = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    name = html.escape(str(summary.get("scenario_name", "")))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>rescue-sim frontier: {name}</title>'
        f"<style>{PAGE_CSS}</style></head><body>\n<h1>Cost-service frontier: {name}</h1>\n"
        + frontier_section_html(folder)
        + "\n</body></html>\n"
    )


__all__ = [
    "KNEE_METHOD",
    "frontier_figure",
    "frontier_report_html",
    "frontier_section_html",
    "is_frontier_folder",
    "point_dir",
    "write_frontier",
    "write_frontier_files",
]
