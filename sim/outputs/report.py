"""Figures and a one-file HTML report from a run folder (``rescue-sim run ... --out DIR``).

:func:`plot_run` writes the figures of :mod:`sim.outputs.plots` as PNG files; :func:`write_report`
writes one self-contained HTML page (figures embedded as base64 PNG, the KPI table, the
resolved scenario) that opens offline in any browser. Nothing is simulated here: both
read calls.parquet, units.parquet, agents.parquet and summary.json. Each claims its output
before reading anything: the figures as an output folder
(:class:`~sim.outputs.output_folder.OutputFolder`, written as a unit with its manifest),
the page as an output file (:class:`~sim.outputs.output_file.OutputFile`, written beside
its place and renamed into it), so an interrupted write never leaves half of either.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.kpi_catalogue import CATALOGUE, format_kpi
from sim.analysis.kpis import KpiSettings
from sim.analysis.tables import kpi_frame, province_kpis
from sim.outputs import plots
from sim.outputs.figure_jobs import run_jobs
from sim.outputs.outlines import OUTLINE_CAPTION
from sim.outputs.output_file import OutputFile
from sim.outputs.output_folder import MANIFEST, FolderLock, OutputFolder, existing_folder
from sim.outputs.run_folder import read_agents, read_run, read_sweep_summary

DPI = 110


@dataclass
class RunFolder:
    """What a run folder holds, with the scenario validated again when possible."""

    path: Path
    calls: pd.DataFrame
    units: pd.DataFrame
    summary: dict[str, Any]
    scenario: Any  # sim.Scenario, or None when the stored scenario no longer validates
    network: Any  # sim.model.network.Network, or None
    # The hotline's agents on duty over time; None in a folder written before it was kept.
    agents: pd.DataFrame | None = None

    @property
    def scenario_dict(self) -> dict[str, Any]:
        return dict(self.summary.get("scenario") or {})

    @property
    def horizon_h(self) -> float:
        horizon = self.scenario_dict.get("horizon", {})
        if "days" in horizon:
            return float(horizon["days"]) * 24.0
        return math.ceil(float(self.calls["t_call_h"].max()) / 24.0) * 24.0

    @property
    def warmup_h(self) -> float:
        return float(self.scenario_dict.get("horizon", {}).get("warmup_days", 0.0)) * 24.0

    @property
    def title(self) -> str:
        s = self.summary
        return f"{s.get('scenario_name', 'run')} | {s.get('policy', '')}".strip(" |")


def load_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder; rebuild its network from the stored scenario (no simulation)."""
    calls, units, summary = read_run(run_dir)
    scenario = network = None
    try:
        from sim.model.network import build_network
        from sim.model.scenario import Scenario

        scenario = Scenario.model_validate(summary["scenario"])
        network = build_network(scenario)
    except Exception:  # a CSV it names has moved: the figures that need it are skipped
        scenario = network = None
    return RunFolder(
        Path(run_dir), calls, units, summary, scenario, network, agents=read_agents(run_dir)
    )


def _agents(run: RunFolder) -> pd.DataFrame | tuple[int, ...] | None:
    """What the hotline had on duty: the run's record, or for an older folder the shift plan."""
    if run.agents is not None:
        return run.agents
    if run.scenario is not None:  # no record of a surge's extra agents in such a folder
        return tuple(run.scenario.hotline.agents_by_hour)
    return None


def _province_kpis(run: RunFolder) -> pd.DataFrame:
    """The run's call KPIs by province, with the scenario's promise settings."""
    window = {"warmup_h": run.warmup_h, "horizon_h": run.horizon_h}
    if run.scenario is None:
        return province_kpis(run.calls, KpiSettings(**window))
    return province_kpis(run.calls, replace(KpiSettings.of(run.scenario), **window))


def figure_makers(
    run: RunFolder, baseline: RunFolder | str | Path | None = None
) -> dict[str, Callable[[], Figure | None]]:
    """What draws each figure of a run folder, by file stem, in report order.

    Each maker is a pure function of the folder as read: :func:`run_jobs` draws them
    side by side. A maker returns None when its figure says nothing for this run (the
    province map of a run in one province). With ``baseline`` (another run folder) the
    figures end with the map of how this run's network differs from the baseline's
    (``network_changes``).
    """
    if baseline is not None and not isinstance(baseline, RunFolder):
        baseline = load_run(baseline)
    c, u = run.calls, run.units
    warmup_h, horizon_h = run.warmup_h, run.horizon_h
    figures: dict[str, Callable[[], Figure | None]] = {
        "kpi_dashboard": lambda: plots.kpi_dashboard(run.summary, title=run.title),
        "response_times": lambda: plots.response_time_cdf(c, warmup_h=warmup_h),
    }
    agents = _agents(run)
    if agents is not None:
        figures["hourly_profile"] = lambda: plots.hourly_profile(
            c, agents, warmup_h=warmup_h, horizon_h=horizon_h
        )
    network = run.network
    van_station = network.van_station if network is not None else None
    labels = None
    if network is not None:
        codes = network.areas["adcode"].to_numpy()
        labels = [
            plots.province_label(codes[a]) if a >= 0 else str(name)
            for a, name in zip(network.station_area, network.station_name, strict=True)
        ]
    figures["van_utilisation"] = lambda: plots.van_utilisation(
        c, u, van_station=van_station, station_labels=labels, warmup_h=warmup_h, horizon_h=horizon_h
    )
    if network is not None:
        figures["network_map"] = lambda: plots.network_map(
            network, surges=run.scenario_dict, title=f"{run.title}: stations and vans"
        )
    figures["on_time_map"] = lambda: plots.on_time_map(
        c,
        network,
        warmup_h=warmup_h,
        horizon_h=horizon_h,
        surges=run.scenario_dict,
        title=f"{run.title}: on-time arrival by prefecture",
    )
    figures["province_on_time"] = lambda: _province_map(run)
    if network is not None and baseline is not None and baseline.network is not None:
        base = baseline
        figures["network_changes"] = lambda: plots.network_difference_map(
            base.network, network, labels=(base.title, run.title)
        )
    figures["timeline"] = lambda: plots.surge_timeline(
        c, run.scenario_dict, horizon_h=horizon_h, warmup_h=warmup_h
    )
    return figures


def _province_map(run: RunFolder) -> Figure | None:
    """On-time arrival by province; None for a run in one province, which would be a
    single colour (the prefecture map says more)."""
    by_province = _province_kpis(run)
    if by_province["on_time_arrival_rate"].notna().sum() < 2:
        return None
    return plots.province_choropleth(
        by_province["on_time_arrival_rate"],
        kpi="on_time_arrival_rate",
        title=f"{run.title}: on-time arrival by province",
    )


def run_figures(
    run: RunFolder | str | Path, baseline: RunFolder | str | Path | None = None
) -> dict[str, Figure]:
    """Every figure of a run folder, by file stem, in report order (drawn here).

    With ``baseline`` (another run folder) the figures end with the map of how this
    run's network differs from the baseline's (``network_changes``).
    """
    if not isinstance(run, RunFolder):
        run = load_run(run)
    drawn = {name: make() for name, make in figure_makers(run, baseline).items()}
    return {name: fig for name, fig in drawn.items() if fig is not None}


def _png_job(make: Callable[[], Figure | None], dpi: int) -> Callable[[], bytes | None]:
    def job() -> bytes | None:
        fig = make()
        return None if fig is None else figure_png(fig, dpi)

    return job


def figure_pngs(
    run: RunFolder,
    baseline: RunFolder | str | Path | None = None,
    *,
    dpi: int = DPI,
    more: Mapping[str, Callable[[], Any]] | None = None,
    workers: int | None = None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every figure of a run folder as PNG bytes, drawn side by side (:func:`run_jobs`),
    by file stem in report order; and the results of the ``more`` jobs (run first, in
    the same pool: the report's replay). ``workers``: as :func:`run_jobs` takes it."""
    extra = dict(more or {})
    jobs: dict[str, Callable[[], Any]] = {f"more:{k}": job for k, job in extra.items()}
    makers = figure_makers(run, baseline)
    jobs.update({name: _png_job(make, dpi) for name, make in makers.items()})
    done = run_jobs(jobs, workers)
    pngs = {name: done[name] for name in makers if done[name] is not None}
    return pngs, {k: done[f"more:{k}"] for k in extra}


# --------------------------------------------------------------------------- writing


FIGURES_KIND = "figures"
"""The kind of a folder of figures in its manifest."""
REPORT_NAME = "report.html"
"""A report's default name, in the folder it reports on."""


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """A figure as PNG bytes; missing-glyph warnings (CJK names in DejaVu) are silenced."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Glyph .* missing from.*")
        warnings.filterwarnings("ignore", message=r".*Matplotlib currently does not support.*")
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


@contextmanager
def _writing_beside(folder: str | Path, out: Path) -> Iterator[None]:
    """Hold ``folder``'s lock while writing inside it: a run replacing it waits its turn.

    Otherwise figures of the old run could land in the new run's folder.
    """
    inside = out.resolve().is_relative_to(Path(folder).resolve())
    if not inside:
        yield
        return
    with FolderLock(Path(folder).resolve(), option="RUN_DIR"):
        yield


def own_figures(folder: Path) -> bool:
    """Whether ``folder`` holds figures that ``plot`` wrote: its manifest says so, or (from
    a rescue-sim whose figure folders had none) it holds nothing but PNG files."""
    if not folder.is_dir():
        return False
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            return False
        return bool(kind == FIGURES_KIND)
    return all(entry.suffix == ".png" and entry.is_file() for entry in folder.iterdir())


def own_page(path: Path) -> bool:
    """Whether ``path`` is a page that ``report`` wrote (its title says rescue-sim).

    Only a regular file is read: a FIFO or a device is never opened.
    """
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b"<title>rescue-sim " in head


@contextmanager
def claimed_figures(
    run_dir: str | Path, out_dir: str | Path | None, overwrite: bool
) -> Iterator[tuple[OutputFolder, Path]]:
    """The folder of figures of ``run_dir`` claimed before any work, and its name as shown.

    ``out_dir`` None: RUN_DIR/figures, which replaces the figures a previous ``plot``
    wrote there without ``overwrite`` (they are this command's own, in the run's own
    folder); any other folder that holds files is replaced only with ``overwrite``.
    The run folder's manifest lists only the run's files, so it verifies as before.
    """
    if out_dir is None:
        shown = existing_folder(run_dir) / "figures"
        overwrite = overwrite or own_figures(shown)
    else:
        shown = Path(out_dir)
    with _writing_beside(run_dir, shown), OutputFolder.claim(shown, overwrite=overwrite) as folder:
        yield folder, shown


@contextmanager
def claimed_page(
    folder: str | Path, path: str | Path | None, overwrite: bool
) -> Iterator[OutputFile]:
    """The report page of ``folder`` claimed before any work (:class:`OutputFile`).

    ``path`` None: FOLDER/report.html, which replaces a page ``report`` wrote there
    before without ``overwrite``; any other existing file is replaced only with
    ``overwrite``. The folder's manifest does not list the page, so it verifies as before.
    """
    if path is None:
        target = existing_folder(folder) / REPORT_NAME
        replaceable = own_page
    else:
        target = Path(path)
        replaceable = None
    with (
        _writing_beside(folder, target),
        OutputFile.claim(target, overwrite=overwrite, replaceable=replaceable) as page,
    ):
        yield page


def plot_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    dpi: int = DPI,
    baseline_dir: str | Path | None = None,
    overwrite: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """Write every figure of a run folder as PNG (default: RUN_DIR/figures); returns the paths.

    The folder is claimed first (:func:`claimed_figures`) and written as a unit.
    ``baseline_dir``: another run folder; adds the map of the network changes.
    ``workers``: processes drawing the figures (default one per core; the same files
    whatever the number).
    """
    with claimed_figures(run_dir, out_dir, overwrite) as (folder, shown):
        names = []
        pngs, _ = figure_pngs(load_run(run_dir), baseline_dir, dpi=dpi, workers=workers)
        for name, png in pngs.items():
            (folder.staging / f"{name}.png").write_bytes(png)
            names.append(f"{name}.png")
        folder.commit(kind=FIGURES_KIND)
    return [shown / name for name in names]


def plot_sweep(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    dpi: int = DPI,
    overwrite: bool = False,
) -> list[Path]:
    """Write the KPIs of a sweep folder against each swept path as PNG; returns the paths.

    One figure per swept path on the horizontal axis (default folder: SWEEP_DIR/figures,
    claimed as :func:`plot_run` claims it).
    """
    with claimed_figures(sweep_dir, out_dir, overwrite) as (folder, shown):
        summary = read_sweep_summary(sweep_dir)
        names = []
        for x in plots.sweep_parameters(summary):
            name = "sweep_" + re.sub(r"[^\w.-]+", "_", x) + ".png"
            (folder.staging / name).write_bytes(figure_png(plots.sweep_plot(summary, x), dpi))
            names.append(name)
        folder.commit(kind=FIGURES_KIND)
    return [shown / name for name in names]


def kpi_table_html(summary: dict[str, Any]) -> str:
    """The KPI table: mean, 95% interval, published target and definition."""
    table = kpi_frame(summary)
    rows = []
    for kpi, row in table.iterrows():
        name = str(kpi)
        entry = CATALOGUE.get(name)
        interval = (
            f"{format_kpi(name, row['low'])} &ndash; {format_kpi(name, row['high'])}"
            if np.isfinite(row["low"]) and np.isfinite(row["high"])
            else "&ndash;"
        )
        target = entry.target if entry is not None else None
        flag = ""
        if target is not None and np.isfinite(row["mean"]):
            flag = ' class="met"' if row["mean"] >= target else ' class="missed"'
        rows.append(
            f"<tr{flag}><td><code>{html.escape(name)}</code></td>"
            f"<td class=num>{format_kpi(name, row['mean'], missing='&ndash;')}</td>"
            f"<td class=num>{interval}</td>"
            f"<td class=num>{format_kpi(name, target, missing='')}</td>"
            f"<td>{html.escape(entry.text if entry is not None else '')}</td></tr>"
        )
    return (
        '<table class="kpis"><thead><tr><th>KPI</th><th>mean</th><th>95% interval</th>'
        "<th>published target</th><th>definition</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans",sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#555}table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
tr.met td:first-child{border-left:4px solid #2ca02c}
tr.missed td:first-child{border-left:4px solid #c0392b}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:.8em;
max-height:480px;border:1px solid #e5e5e5}
"""

_CAPTIONS = {
    "kpi_dashboard": "KPIs with 95% intervals over replications; the dashed red marks are the "
    "published 93% rates of the Dongfeng network (seeds/published_figures.yaml).",
    "response_times": "Empirical CDF of hours from call to arrival, by arrival-promise band and "
    "by customer segment; the dashed lines mark the promises.",
    "hourly_profile": "Calls per hour of the day (mean day) against agents on duty, and the "
    "hotline wait by hour of call.",
    "van_utilisation": "The busiest stations by share of van time not idle, and the share of vans "
    "busy hour by hour (mean over replications).",
    "network_map": "Stations sized by their vans, on the province outlines and the prefecture "
    "cells.",
    "on_time_map": "On-time arrival by prefecture (counted as the KPI), each prefecture drawn "
    "as its cell: the Voronoi region of its seat within its province, cut to the outline.",
    "province_on_time": "On-time arrival by province: the mean over replications of each "
    "replication's rate.",
    "network_changes": "How this run's network differs from the baseline's: stations opened "
    "and closed (sized by vans), van counts changed (sized by the change).",
    "timeline": "Calls, hotline load and late arrivals hour by hour; surge windows shaded.",
}


MAPS = ("network_map", "on_time_map", "province_on_time", "network_changes")


def _replay_part(run: RunFolder) -> list[str]:
    """The replay of the busiest day after the warm-up, embedded: the page goes in an
    iframe's ``srcdoc``, sandboxed (its script runs there, none in the report), so the
    report stays one file that opens offline. Nothing when the network cannot be rebuilt."""
    if run.network is None or run.calls.empty:
        return []
    from sim.outputs.replay import day_label, replay_data, replay_html, replay_window

    window = replay_window(run)
    page = replay_html(replay_data(run, window))
    return [
        f"<h2>Replay of the busiest day: {html.escape(day_label(run, window.start_h))}</h2>",
        f"<p>Replication {window.replication}, the day with the most calls after the warm-up "
        "(<code>rescue-sim replay RUN_DIR --out day.html</code> writes any other day as its "
        "own page). Press Play, or drag the slider; click a call or a van.</p>",
        f'<iframe id="replay" title="replay of the busiest day" sandbox="allow-scripts" '
        f'style="width:100%;height:760px;border:1px solid #ddd" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>',
    ]


def report_html(
    run_dir: str | Path, baseline_dir: str | Path | None = None, *, workers: int | None = None
) -> str:
    """The report page as a string; with ``baseline_dir`` it maps the network changes.

    The figures and the replay are made side by side (``workers``: as :func:`run_jobs`
    takes it; the same page whatever the number).
    """
    run = load_run(run_dir)
    s = run.summary
    # The replay first: the longest job on a national run.
    figures, more = figure_pngs(
        run, baseline_dir, more={"replay": lambda: _replay_part(run)}, workers=workers
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rescue-sim report: {html.escape(run.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>rescue-sim report: {html.escape(str(s.get('scenario_name', 'run')))}</h1>",
    ]
    description = run.scenario_dict.get("description") or ""
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    meta = [
        ("policy", s.get("policy")),
        ("seed", s.get("seed")),
        ("replications", s.get("replications")),
        ("horizon", f"{run.horizon_h / 24:g} d, warm-up {run.warmup_h / 24:g} d"),
        ("scenario file", s.get("scenario_file")),
        ("run folder", str(Path(run_dir).resolve())),
    ]
    parts.append(
        '<p class="meta">'
        + " &middot; ".join(f"<b>{k}</b>: {html.escape(str(v))}" for k, v in meta if v is not None)
        + "</p>"
    )
    parts.append("<h2>KPIs</h2>")
    parts.append(kpi_table_html(s))
    parts.append("<h2>Figures</h2>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        caption = _CAPTIONS.get(name, name)
        if name in MAPS:
            caption = f"{caption} {OUTLINE_CAPTION}"
        caption = html.escape(caption)
        parts.append(
            f'<figure id="{name}"><img alt="{name.replace("_", " ")}" '
            f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
        )
    parts.extend(more["replay"])
    parts.append("<h2>Resolved scenario</h2>")
    parts.append(
        "<p>As validated and run (every default filled in); "
        "<code>Scenario.model_validate</code> accepts it as is.</p>"
    )
    scenario_text = json.dumps(run.scenario_dict, indent=2, ensure_ascii=False)
    parts.append(f"<pre>{html.escape(scenario_text)}</pre>")
    provenance = {"input_sha256": s.get("input_sha256", {}), "versions": s.get("versions", {})}
    parts.append("<h2>Provenance</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(provenance, indent=2, ensure_ascii=False))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    run_dir: str | Path,
    path: str | Path | None = None,
    *,
    baseline_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the self-contained HTML report (default: RUN_DIR/report.html); returns its path.

    The page is claimed first (:func:`claimed_page`): an existing file elsewhere is
    replaced only with ``overwrite``. ``baseline_dir``: another run folder whose network
    this run's is mapped against.
    """
    with claimed_page(run_dir, path, overwrite) as page:
        data = report_html(run_dir, baseline_dir).encode("utf-8")
        return page.write(lambda tmp: tmp.write_bytes(data))


def write_replay(
    run_dir: str | Path,
    out: str | Path,
    *,
    replication: int | None = None,
    start_day: float | None = None,
    hours: float = 24.0,
    region: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the replay page of a run folder; returns its path as given.

    The page is :mod:`sim.outputs.replay`'s. The file is claimed before anything is read
    (:class:`OutputFile`); the options are checked against the run before the page is
    built (:func:`~sim.outputs.replay.replay_window`).
    """
    from sim.outputs.replay import check_options, replay_data, replay_html, replay_window

    # Mistakes that need no run are named before anything is read or claimed.
    check_options(replication=replication, start_day=start_day, hours=hours, region=region)
    with OutputFile.claim(out, overwrite=overwrite) as page:
        run = load_run(run_dir)
        window = replay_window(
            run, replication=replication, start_day=start_day, hours=hours, region=region
        )
        data = replay_html(replay_data(run, window)).encode("utf-8")
        return page.write(lambda tmp: tmp.write_bytes(data))


__all__ = [
    "RunFolder",
    "figure_makers",
    "figure_png",
    "figure_pngs",
    "load_run",
    "plot_run",
    "report_html",
    "run_figures",
    "write_replay",
    "write_report",
]
