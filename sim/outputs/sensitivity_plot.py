"""The sensitivity figure: one bar per parameter, its index with the 95% interval; the
folder ``rescue-sim sensitivity --out`` writes, and its HTML report.

Built with the object-oriented API (``Figure()``), never pyplot's global state, like the
other figures, so it works headless and in worker processes.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.experiments.fitting.sensitivity import SensitivityResult
from sim.experiments.runs.store import atomic_write
from sim.outputs.design_folder import PAGE_CSS, html_table
from sim.outputs.output_folder import OutDir, claimed_folder
from sim.outputs.report import figure_png

# Written last into a sensitivity folder: what ran, and the mark `report` knows it by.
MARKER = "sensitivity.json"

# Which index a method's figure shows, with its interval columns and axis label.
_SHOWN = {
    "morris": ("mu_star", "mu_star_low", "mu_star_high", "Morris mu* (effect across the range)"),
    "sobol": ("ST", "ST_low", "ST_high", "Sobol total index ST"),
}


def sensitivity_figure(indices: pd.DataFrame, kpi: str, method: str = "morris") -> Figure:
    """Horizontal bars of mu* (or Sobol ST) per parameter for one KPI, largest on top."""
    value, low, high, label = _SHOWN[method]
    table = indices[indices["kpi"] == kpi].sort_values(value)
    fig = Figure(figsize=(7.0, 1.0 + 0.5 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))
    mean = table[value].to_numpy(float)
    errors = np.vstack([mean - table[low].to_numpy(float), table[high].to_numpy(float) - mean])
    ax.barh(y, mean, xerr=np.clip(errors, 0.0, None), color="#4c72b0", capsize=4)
    ax.set_yticks(y, table["parameter"].tolist())
    ax.set_xlabel(f"{label}, 95% interval")
    ax.set_title(f"Sensitivity of {kpi}")
    ax.axvline(0.0, color="black", linewidth=0.8)
    return fig


def write_sensitivity(
    result: SensitivityResult,
    out_dir: OutDir,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """sensitivity.csv (indices), points.csv (every point run), one PNG per KPI and
    sensitivity.json (the method and what was screened), written as one folder.

    ``out_dir`` is a path, or an :class:`~sim.outputs.output_folder.OutputFolder` claimed
    before the runs (as the command line does). A folder that already holds files is
    refused unless ``overwrite``. Returns the files' paths in the folder written.
    """
    with claimed_folder(out_dir, overwrite) as folder:
        names = _write_files(result, folder.staging)
        target = folder.commit(kind="sensitivity")
    return [target / name for name in names]


def _write_files(result: SensitivityResult, out_dir: Path) -> list[str]:
    paths = [out_dir / "sensitivity.csv", out_dir / "points.csv"]
    result.indices.to_csv(paths[0], index=False)
    result.points.to_csv(paths[1], index=False)
    for kpi in result.indices["kpi"].unique():
        path = out_dir / f"sensitivity_{kpi}.png"
        sensitivity_figure(result.indices, str(kpi), result.method).savefig(path, dpi=120)
        paths.append(path)
    marker = {
        "method": result.method,
        "replications": result.replications,
        "kpis": [str(k) for k in result.indices["kpi"].unique()],
        "parameters": [str(p) for p in result.indices["parameter"].unique()],
        "points": len(result.points),
    }
    paths.append(out_dir / MARKER)
    paths[-1].write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return [path.name for path in paths]


def is_sensitivity_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``rescue-sim sensitivity --out``."""
    return (Path(path) / MARKER).is_file()


def sensitivity_report_html(folder: str | Path) -> str:
    """The report page of a sensitivity folder: per KPI, the figure and the indices."""
    folder = Path(folder)
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    indices = pd.read_csv(folder / "sensitivity.csv")
    method = str(marker["method"])
    label = _SHOWN[method][3]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rescue-sim sensitivity</title><style>{PAGE_CSS}</style></head><body>",
        "<h1>Sensitivity</h1>",
        "<p>"
        + html.escape(
            f"{method} ({label}) over {len(marker['parameters'])} parameters, "
            f"{marker['points']} points of {marker['replications']} replication(s) each, "
            "every point on the scenario's seed (common random numbers). Rank 1 is the "
            "most influential parameter for that KPI."
        )
        + "</p>",
    ]
    for kpi in marker["kpis"]:
        png = figure_png(sensitivity_figure(indices, str(kpi), method))
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(str(kpi))}</h2>")
        parts.append(
            f'<figure id="sensitivity_{html.escape(str(kpi))}"><img alt="{html.escape(str(kpi))}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(label)} per '
            "parameter with its 95% bootstrap interval.</figcaption></figure>"
        )
        parts.append(html_table(indices[indices["kpi"] == kpi].drop(columns="kpi")))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_sensitivity_report(folder: str | Path, path: str | Path | None = None) -> Path:
    """Write the sensitivity folder's report (default: FOLDER/report.html); its path."""
    target = Path(path) if path is not None else Path(folder) / "report.html"
    page = sensitivity_report_html(folder).encode("utf-8")
    atomic_write(target, lambda tmp: tmp.write_bytes(page))
    return target
