"""Reference data shipped with the project: prefectures, published figures, scenarios.

The files under ``seeds/`` are parsed here and nowhere else in the package, except the
province outlines, which :mod:`sim.model.outlines` reads (the run folder only hashes
them).

In a source checkout the files are read from the top-level ``seeds/`` and ``scenarios/``
folders; an installed wheel carries copies under ``sim/_bundled/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

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
    """Every province name of the shipped prefectures (Chinese, e.g. 河南省), sorted."""
    return sorted(areas()["province"].unique())


@cache
def _published_figures() -> dict[str, Any]:
    from ruamel.yaml import YAML  # only when first asked: most runs never read it

    text = (data_dir("seeds") / "published_figures.yaml").read_text(encoding="utf-8")
    figures: dict[str, Any] = YAML(typ="safe").load(text)
    return figures


def published_figures(source: str) -> dict[str, Any]:
    """The figures a seed article states (seeds/published_figures.yaml), by its section.

    ``source`` names the section: ``dongfeng_light_truck`` (the network the national
    scenario is built on, and its published 93% rates), ``henan_flood_2021``... The one
    place the file is read; a copy is returned, so callers cannot change the cache.
    """
    sections = _published_figures()
    if source not in sections or not isinstance(sections[source], dict):
        known = ", ".join(k for k, v in sections.items() if isinstance(v, dict))
        raise KeyError(f"no section {source!r} in published_figures.yaml; known: {known}")
    return dict(sections[source])


# Province names in pinyin by the first two digits of the adcode (GB/T 2260): labels
# that render in any font (figures), where the Chinese names might not.
PROVINCE_PINYIN: dict[str, str] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang", "71": "Taiwan", "81": "Hong Kong", "82": "Macao",
}  # fmt: skip
