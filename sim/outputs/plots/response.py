"""Response times: the distribution of hours from call to arrival, against the promises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.tables import after_warmup
from sim.outputs.plots._style import PALETTE, Margins, fixed_figure

RESPONSE_MARGINS = Margins(0.65, 0.1, 0.5, 0.55, gap_x=0.25, ncols=2)


def _ecdf(ax: Any, values: np.ndarray, **kwargs: Any) -> Any:
    x = np.sort(values)
    y = np.arange(1, len(x) + 1) / len(x)
    (line,) = ax.step(x, y, where="post", **kwargs)
    return line


def response_time_cdf(calls: pd.DataFrame, *, warmup_h: float = 0.0) -> Figure:
    """Empirical CDF of hours from call to arrival, by arrival-promise band and by segment.

    Each promise band (``arrival_promise_h``) has its own curve and a dashed line at its
    promise; the share left of the line is that band's on-time arrival.
    """
    c = after_warmup(calls, warmup_h)
    c = c[~np.isnan(c["arrived_h"].to_numpy(float))]
    response = (c["arrived_h"] - c["t_call_h"]).to_numpy(float)
    promise = c["arrival_promise_h"].to_numpy(float)
    fig = fixed_figure(12, 4.8, RESPONSE_MARGINS)
    ax_band, ax_seg = fig.subplots(1, 2, sharey=True)
    bands = np.unique(promise[np.isfinite(promise)])
    for k, hours in enumerate(bands):
        colour = PALETTE[k % len(PALETTE)]
        values = response[promise == hours]
        share = float(np.mean(values <= hours))
        _ecdf(
            ax_band,
            values,
            color=colour,
            label=f"{hours:g} h promise: n={len(values)}, {share:.1%} on time",
        )
        ax_band.axvline(hours, color=colour, linestyle="--", linewidth=1.2)
    ax_band.set_title("By distance band (promise dashed)")
    segments = [str(s) for s in pd.unique(c["segment"].astype(str))] if len(c) else []
    for k, name in enumerate(sorted(segments)):
        mask = (c["segment"].astype(str) == name).to_numpy()
        values = response[mask]
        on_time = float(np.mean(values <= promise[mask]))
        _ecdf(
            ax_seg,
            values,
            color=PALETTE[k % len(PALETTE)],
            label=f"{name}: n={len(values)}, {on_time:.1%} within promise",
        )
    for hours in bands:
        ax_seg.axvline(hours, color="grey", linestyle=":", linewidth=1)
    ax_seg.set_title("By customer segment (promises dotted)")
    upper = max(
        float(np.quantile(response, 0.995)) if len(response) else 1.0,
        float(bands.max()) if len(bands) else 1.0,
    )
    for ax in (ax_band, ax_seg):
        ax.set_xlim(0, upper * 1.05)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("hours from call to arrival on site")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
    ax_band.set_ylabel("share of arrived calls")
    fig.suptitle(f"Response-time distribution ({len(response):,} arrivals)")
    return fig
