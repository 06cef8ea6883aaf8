"""Reference data shipped with the project: prefectures, published figures, scenarios.

In a source checkout the files are read from the top-level ``seeds/`` and ``scenarios/``
folders; an installed wheel carries copies under ``sim/_bundled/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

# This module lives in sim/model/; the data folders are beside the package (or bundled in it).
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def data_dir(name: str) -> Path:
    """The folder ``seeds`` or ``scenarios``, wherever this installation keeps it."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"reference folder {name!r} is missing from this installation")


def default_scenario_path() -> Path:
    """The bundled national scenario that ``rescue-sim run`` uses with no argument."""
    return data_dir("scenarios") / "dongfeng_light_truck.yaml"


PREFECTURE_COUNT = 337


@cache
def areas() -> pd.DataFrame:
    """Demand areas: the 337 prefecture-level-and-above divisions (地级及以上城市).

    Columns: adcode, name, province, kind, lat, lon, population_weight, and
    ``is_prefecture`` (every row counts towards the published prefecture coverage).
    """
    table = pd.read_csv(data_dir("seeds") / "prefectures.csv", dtype={"adcode": str})
    table["is_prefecture"] = True
    return table.sort_values("adcode", ignore_index=True)


def select_areas(provinces: tuple[str, ...] | None, include_municipalities: bool) -> pd.DataFrame:
    """The demand areas of a scenario's geography, in a stable order."""
    table = areas()
    keep = np.ones(len(table), dtype=bool)
    if provinces is not None:
        keep &= table["province"].isin(provinces).to_numpy()
    if not include_municipalities:
        keep &= (table["kind"] != "municipality").to_numpy()
    return table[keep].reset_index(drop=True)


def known_provinces() -> list[str]:
    return sorted(areas()["province"].unique())
