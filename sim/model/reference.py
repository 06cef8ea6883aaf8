"""Reference data shipped with the project: prefectures, published figures, scenarios.

The files under ``seeds/`` are parsed here and nowhere else in the package, except the
province outlines, which :mod:`sim.model.outlines` reads (the run folder only hashes
them).

In a source checkout the files are read from the top-level ``seeds/`` and ``scenarios/``
folders; an installed wheel carries copies under ``sim/_bundled/``.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
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


# A table as parallel arrays by column name (the demand areas here; a network's stations
# while they are built): what `validate` works with, so that it need not import pandas.
Columns = dict[str, np.ndarray]
# Columns of seeds/prefectures.csv, with the type each is read as.
_AREA_TEXT = ("adcode", "name", "province", "kind")
_AREA_NUMBERS = ("lat", "lon", "population_weight")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


@cache
def area_columns() -> Columns:
    """Demand areas as parallel arrays, in adcode order (the rows of :func:`areas`).

    Read with the csv module, not pandas: ``rescue-sim validate`` builds a network from
    these and would otherwise pay for importing pandas (about a third of its time).
    """
    with (data_dir("seeds") / "prefectures.csv").open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["adcode"])
    columns: Columns = {
        name: np.array([row[name] for row in rows], dtype=object) for name in _AREA_TEXT
    }
    for name in _AREA_NUMBERS:
        cells = [row[name].strip() for row in rows]
        # A column of whole numbers written as such is int64, as pandas reads it.
        whole = all(_WHOLE_NUMBER.fullmatch(cell) for cell in cells)
        columns[name] = (
            np.array([int(cell) for cell in cells], dtype=np.int64)
            if whole
            else np.array([float(cell) for cell in cells], dtype=float)
        )
    columns["is_prefecture"] = np.ones(len(rows), dtype=bool)
    for array in columns.values():
        array.flags.writeable = False  # cached: shared by every caller
    return columns


def select_area_columns(provinces: tuple[str, ...] | None, include_municipalities: bool) -> Columns:
    """The demand areas of a scenario's geography as arrays, in a stable order."""
    columns = area_columns()
    keep = np.ones(len(columns["adcode"]), dtype=bool)
    if provinces is not None:
        keep &= np.isin(columns["province"], list(provinces))
    if not include_municipalities:
        keep &= columns["kind"] != "municipality"
    return {name: values[keep] for name, values in columns.items()}


def area_frame(columns: Columns) -> pd.DataFrame:
    """Area arrays as a table (columns: adcode, name, province, kind, lat, lon,
    population_weight, ``is_prefecture``)."""
    import pandas as pd

    return pd.DataFrame({name: values.copy() for name, values in columns.items()})


@cache
def areas() -> pd.DataFrame:
    """Demand areas: the 337 prefecture-level-and-above divisions (地级及以上城市).

    Columns: adcode, name, province, kind, lat, lon, population_weight, and
    ``is_prefecture`` (every row counts towards the published prefecture coverage).
    """
    return area_frame(area_columns())


def select_areas(provinces: tuple[str, ...] | None, include_municipalities: bool) -> pd.DataFrame:
    """The demand areas of a scenario's geography, in a stable order."""
    return area_frame(select_area_columns(provinces, include_municipalities))


def known_provinces() -> list[str]:
    """Every province name of the shipped prefectures (Chinese, e.g. 河南省), sorted."""
    return sorted(set(area_columns()["province"].tolist()))


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


@cache
def prefecture_latin_names() -> dict[str, str]:
    """Prefecture names in Latin letters by adcode (seeds/prefecture_names_latin.csv),
    for maps drawn with fonts that have no Chinese glyphs."""
    path = data_dir("seeds") / "prefecture_names_latin.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["adcode"]: row["name_latin"] for row in csv.DictReader(handle)}
