"""The sensitivity figure: one bar per parameter, its index with the 95% interval.

Built with the object-oriented API (``Figure()``), never pyplot's global state, like the
other figures, so it works headless and in worker processes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.experiments.sensitivity import SensitivityResult

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


def write_sensitivity(result: SensitivityResult, out_dir: Path) -> list[Path]:
    """sensitivity.csv (indices), points.csv (every point run) and one PNG per KPI."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "sensitivity.csv", out_dir / "points.csv"]
    result.indices.to_csv(paths[0], index=False)
    result.points.to_csv(paths[1], index=False)
    for kpi in result.indices["kpi"].unique():
        path = out_dir / f"sensitivity_{kpi}.png"
        sensitivity_figure(result.indices, str(kpi), result.method).savefig(path, dpi=120)
        paths.append(path)
    return paths
