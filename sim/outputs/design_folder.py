"""The folder ``rescue-sim optimise --out DIR`` writes, and its HTML report.

* ``stations.csv``: the optimised network, as ``network.stations.csv`` loads it;
  ``current_stations.csv``: the scenario's own network in the same form.
* ``optimised.yaml`` and ``current.yaml``: the scenario on each stations file with the
  confirmation seed and replications; ``rescue-sim run`` on either reproduces its KPIs.
* ``kpis.csv``: every KPI, current and optimised, with 95% intervals and the paired
  difference; ``kpis_by_replication.csv``: the KPIs behind it.
* ``changes.csv``: every site whose vans changed (opened, closed, vans added or
  removed); ``changes_by_province.csv``: stations and vans before and after, per province.
* ``history.csv``: the search, one flat row per design run: the move, its paired
  interval, the verdict.
* ``figures/objective.png`` (the objective along the search) and
  ``figures/changes_map.png`` (the changes on the province outlines).
* ``optimise.json``: the spec, seeds, first-stage models and solver status, stop
  reason and timings; it marks a design folder.
* ``store/``: the result store of the search (every run, its tables, each design's
  stations CSV), which a rerun with ``--overwrite`` reads back.

The folder is written as a unit (:mod:`sim.outputs.output_folder`): its files go into
a staging folder that replaces the target in one step, with ``manifest.json``; an
interrupted or killed writer leaves the old folder or the new one, never a mix.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML

from sim.analysis.kpi_catalogue import is_share
from sim.experiments.design.optimise import OptimiseResult
from sim.experiments.runs.store import atomic_write
from sim.model.loading import file_sha256, named_files
from sim.model.reference import data_dir
from sim.model.scenario import Scenario
from sim.outputs.design_plots import changes_map, objective_history
from sim.outputs.output_folder import OutDir, claimed_folder
from sim.outputs.report import figure_png
from sim.outputs.run_folder import _versions

MARKER = "optimise.json"


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def scenario_yaml(scenario: Scenario, stations_file: str, comment: str) -> str:
    """A scenario as YAML, its stations read from ``stations_file`` beside it."""
    data = scenario.model_dump(mode="json", by_alias=True)
    data["network"]["stations"] = {"generate": None, "csv": stations_file}
    data["network"]["vans"]["total"] = None
    buffer = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.dump(data, buffer)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + buffer.getvalue()


def summary_dict(result: OptimiseResult, scenario_path: str | Path | None) -> dict[str, Any]:
    """What optimise.json holds: enough to know what was asked, done and found."""
    stage1 = result.stage1

    def solve(s: Any) -> dict[str, Any] | None:
        if s is None:
            return None
        return {
            "proven_optimal": s.proven_optimal,
            "status": s.status,
            "objective": s.objective,
            "mip_gap": s.mip_gap,
            "seconds": s.seconds,
        }

    hashes = {}
    if scenario_path is not None:
        hashes["scenario"] = file_sha256(scenario_path)
    hashes["seeds/prefectures.csv"] = file_sha256(data_dir("seeds") / "prefectures.csv")
    if result.spec.candidates_csv is not None:
        hashes["candidates_csv"] = file_sha256(result.spec.candidates_csv)
    for name, path in named_files(result.scenario).items():
        hashes[name] = file_sha256(path)
    return {
        "scenario_name": result.scenario.name,
        "scenario_file": str(scenario_path) if scenario_path is not None else None,
        "spec": result.spec.model_dump(mode="json"),
        "objective": result.spec.objective,
        "search_seed": result.scenario.seed,
        "search_replications": result.scenario.replications,
        "days": result.scenario.horizon.days,
        "confirm_seed": result.confirm_seed,
        "confirm_replications": len(result.optimised_kpis),
        "stop_reason": result.stop_reason,
        "evaluations": result.evaluations,
        "elapsed_s": result.elapsed_s,
        "timings_s": result.timings_s,
        "stations": {
            "current": int((result.current_vans > 0).sum()),
            "optimised": int((result.optimised_vans > 0).sum()),
        },
        "vans": {
            "current": int(result.current_vans.sum()),
            "optimised": int(result.optimised_vans.sum()),
            "moved": int((result.optimised_vans - result.current_vans).clip(min=0).sum()),
        },
        "stage1": {
            "demand_points": len(stage1.points),
            "sampled_calls": stage1.points.sampled_calls,
            "coverage_level": stage1.coverage.level,
            "coverage_radius_road_km": stage1.coverage.radius_road_km,
            "coverage_radius_gc_km": stage1.coverage.radius_gc_km,
            "probe_days": stage1.probe.days,
            "busy_h_per_job": stage1.probe.pooled_busy_h_per_job,
            "van_utilisation": stage1.probe.van_utilisation,
            "van_model": stage1.van_model_kind,
            "station_solve": solve(stage1.station_solve),
            "van_solve": solve(stage1.van_solve),
            "model_on_time_calls_per_h_current": stage1.model_value_current,
            "model_on_time_calls_per_h_seed": stage1.model_value_seed,
            "model_fewest_vans": stage1.model_fewest_vans,
        },
        "input_sha256": hashes,
        "versions": _versions(),
    }


def write_design_files(
    result: OptimiseResult, folder: Path, scenario_path: str | Path | None = None
) -> None:
    """Every file of the design folder (see the module docstring), into ``folder``."""
    (folder / "stations.csv").write_text(result.stations_csv, encoding="utf-8")
    (folder / "current_stations.csv").write_text(result.current_stations_csv, encoding="utf-8")
    confirm = result.scenario.with_overrides(
        seed=result.confirm_seed, replications=len(result.optimised_kpis)
    )
    for name, stations, what in (
        ("optimised.yaml", "stations.csv", "the optimised network"),
        ("current.yaml", "current_stations.csv", "the current network"),
    ):
        comment = (
            f"{result.scenario.name}: {what}, as rescue-sim optimise ran it on its confirmation\n"
            f"streams (seed {result.confirm_seed}); 'rescue-sim run {name}' reproduces kpis.csv."
        )
        text = scenario_yaml(confirm, stations, comment)
        (folder / name).write_text(text, encoding="utf-8")
    _write_csv(folder / "kpis.csv", result.kpi_table())
    by_rep = pd.concat(
        [
            result.current_kpis.assign(network="current"),
            result.optimised_kpis.assign(network="optimised"),
        ],
        ignore_index=True,
    )
    by_rep.insert(0, "network", by_rep.pop("network"))
    _write_csv(folder / "kpis_by_replication.csv", by_rep)
    _write_csv(folder / "changes.csv", result.changes())
    _write_csv(folder / "changes_by_province.csv", result.changes_by_province())
    _write_csv(folder / "history.csv", result.history)
    (folder / "figures").mkdir(exist_ok=True)
    for name, png in design_figures(folder).items():
        (folder / "figures" / f"{name}.png").write_bytes(png)
    text = json.dumps(summary_dict(result, scenario_path), indent=2, ensure_ascii=False)
    (folder / MARKER).write_text(text + "\n", encoding="utf-8")


def write_design(
    result: OptimiseResult,
    out_dir: OutDir,
    scenario_path: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the design folder as a unit; returns its path.

    ``out_dir`` is a path, or an :class:`~sim.outputs.output_folder.OutputFolder`
    claimed before the search (as the command line does, so that a bad place is found
    before any work, with the search's result store in it). A folder that already holds
    files is refused unless ``overwrite``.
    """
    with claimed_folder(out_dir, overwrite) as folder:
        write_design_files(result, folder.staging, scenario_path)
        return folder.commit(kind="design", seed=result.confirm_seed)


def is_design_folder(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def design_figures(folder: str | Path) -> dict[str, bytes]:
    """The folder's figures as PNG bytes, drawn from its CSV files."""
    folder = Path(folder)
    history = pd.read_csv(folder / "history.csv")
    before = pd.read_csv(folder / "current_stations.csv", dtype={"id": str})
    after = pd.read_csv(folder / "stations.csv", dtype={"id": str})
    return {
        "objective": figure_png(objective_history(history)),
        "changes_map": figure_png(changes_map(before, after)),
    }


def html_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            fmt = formats.get(str(column))
            text = (
                fmt.format(value)
                if fmt and pd.notna(value)
                else ("" if pd.isna(value) else str(value))
            )
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: float, rate: bool, diff: bool) -> str:
    """A KPI for the table: rates in percent, their differences in points."""
    if rate:
        return f"{value * 100:+.2f} pt" if diff else f"{value:.2%}"
    return f"{value:+,.3f}" if diff else f"{value:,.3f}"


PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans",sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.4;padding:0 16px}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}th{background:#f3f3f3}
figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:.8em}
"""


def design_report_html(folder: str | Path) -> str:
    """The report page of a design folder: KPIs side by side, changes, search, figures."""
    folder = Path(folder)
    summary = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    kpis = pd.read_csv(folder / "kpis.csv")
    by_province = pd.read_csv(folder / "changes_by_province.csv")
    history = pd.read_csv(folder / "history.csv")
    name = html.escape(str(summary.get("scenario_name", "")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rescue-sim network design: {name}</title><style>{PAGE_CSS}</style></head><body>",
        f"<h1>Network design: {name}</h1>",
        "<p>"
        + html.escape(
            f"objective: {summary['objective']}; stations {summary['stations']['current']} -> "
            f"{summary['stations']['optimised']}; vans {summary['vans']['current']} -> "
            f"{summary['vans']['optimised']} ({summary['vans']['moved']} to new places). "
            f"Search: {summary['evaluations']} designs on seed {summary['search_seed']} "
            f"x {summary['search_replications']} replications of {summary['days']:g} days; "
            f"stopped: {summary['stop_reason']}. KPIs below: confirmation on fresh streams, "
            f"seed {summary['confirm_seed']} x {summary['confirm_replications']} replications."
        )
        + "</p>",
        "<h2>KPIs, current and optimised (paired 95% intervals)</h2>",
    ]
    rates = kpis["kpi"].map(is_share).astype(bool)
    shown = kpis.copy()
    for column in (
        "current",
        "current_low",
        "current_high",
        "optimised",
        "optimised_low",
        "optimised_high",
        "diff",
        "diff_low",
        "diff_high",
    ):
        diff = column.startswith("diff")
        shown[column] = [
            ("" if pd.isna(v) else _cell(float(v), bool(r), diff))
            for v, r in zip(shown[column], rates, strict=True)
        ]
    parts.append(html_table(shown))
    figures = design_figures(folder)
    captions = {
        "objective": "The objective of every design run in the search (mean and 95% interval "
        "over the search replications); filled: accepted as the new incumbent.",
        "changes_map": "Where stations were opened or closed and vans added or removed, on "
        "the province outlines (the map's own caption names their source).",
    }
    for key, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="{key}"><img alt="{key}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(captions[key])}</figcaption></figure>"
        )
    parts.append("<h2>Changes by province</h2>")
    parts.append(html_table(by_province))
    parts.append("<h2>Search history</h2>")
    columns = [
        "evaluation",
        "round",
        "move",
        "stations",
        "vans",
        "objective_mean",
        "diff_mean",
        "diff_low",
        "diff_high",
        "level",
        "accepted",
        "reason",
    ]
    parts.append(
        html_table(
            history[[c for c in columns if c in history]],
            {
                "objective_mean": "{:.4f}",
                "diff_mean": "{:+.4f}",
                "diff_low": "{:+.4f}",
                "diff_high": "{:+.4f}",
                "level": "{:.4f}",
            },
        )
    )
    parts.append("<h2>First stage and run</h2>")
    detail = {k: summary[k] for k in ("stage1", "spec", "timings_s", "input_sha256", "versions")}
    parts.append(f"<pre>{html.escape(json.dumps(detail, indent=2, ensure_ascii=False))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_design_report(folder: str | Path, path: str | Path | None = None) -> Path:
    """Write the design folder's report (default: FOLDER/report.html); returns its path."""
    target = Path(path) if path is not None else Path(folder) / "report.html"
    page = design_report_html(folder).encode("utf-8")
    atomic_write(target, lambda tmp: tmp.write_bytes(page))
    return target


__all__ = [
    "design_figures",
    "design_report_html",
    "is_design_folder",
    "scenario_yaml",
    "summary_dict",
    "write_design",
    "write_design_files",
    "write_design_report",
]
