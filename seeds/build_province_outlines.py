#!/usr/bin/env python3
"""Build ``seeds/province_outlines.geojson``: China's province outlines and prefecture cells.

The outlines come from DCW-GMT 2.1.1 (the Digital Chart of the World as packaged for
GMT, LGPL-3+), which Debian ships as the package ``gmt-dcw``. Building needs that
package. Using the map needs only the committed GeoJSON: rescue-sim reads it with
``json`` and tests points with matplotlib, so shapely is not needed at run time.

Usage::

    apt-get install gmt-dcw                   # /usr/share/gmt-dcw/dcw-gmt.nc
    pip install -e '.[maps-build]'            # netCDF4, shapely >= 2.2
    python seeds/build_province_outlines.py           # build, then verify
    python seeds/build_province_outlines.py --check   # verify the committed file only

Output
------
A GeoJSON FeatureCollection (WGS-84 lon/lat, 3 decimals, about 100 m) with two kinds of
feature, told apart by the property ``level``:

* ``province``: the 34 provincial-level divisions of DCW (31 provinces, autonomous
  regions and municipalities, plus Taiwan, Hong Kong and Macao). Properties:
  ``adcode`` (``410000``), ``name`` (``河南省``, as in prefectures.csv), ``dcw_code``
  (``HA``, DCW's state code) and ``in_model`` (false for Taiwan, Hong Kong and Macao,
  which prefectures.csv leaves out; they are drawn, never simulated).
* ``prefecture``: one cell per row of prefectures.csv (337). A cell is the Voronoi
  region of the division's seat among the seats of the same province, cut to the
  province outline, so the cells of a province tile it exactly. It approximates the
  division's area (real prefecture boundaries are not in DCW). Properties: ``adcode``,
  ``name``, ``province``, ``cell`` (``voronoi``; ``disc`` for 三沙市, whose seat on
  Yongxing Island lies outside DCW's Hainan, which has no South China Sea islands: it
  gets a disc of ``SEAT_DISC_DEG`` around the seat instead).

Method
------
1. Decode ``CN??_lon`` / ``CN??_lat``: uint16 values, coordinate = ``min`` + value /
   ``scale`` (per-variable attributes; ``netCDF4.Variable.scale`` is a property, so the
   attribute is read with ``getncattr``). A value of 65535 in ``_lon`` starts a ring;
   the ``_lat`` value beside it is 1 for a hole (GMT's gmt_dcw.c reads them the same way).
2. Drop islets: a part smaller than ``MIN_PART_DEG2`` goes unless it is the division's
   largest part or holds a prefecture seat (舟山, 厦门 ... stay). This removes thousands
   of islets off Zhejiang and Fujian that no truck can drive to.
3. Thin each outline (Douglas-Peucker, ``PRESIMPLIFY_DEG``) so that step 4 is quick.
4. ``shapely.coverage_clean``: DCW stores each division on its own quantisation grid, so
   neighbours overlap or leave slivers by up to a few hundred metres; cleaning makes
   every shared border one identical line (gaps narrower than ``GAP_DEG`` are merged).
5. ``shapely.coverage_simplify`` (Visvalingam-Whyatt, ``SIMPLIFY_DEG``) simplifies each
   shared border once, for both neighbours, so no gap or overlap opens between
   provinces; then coordinates go to a ``GRID_DEG`` grid. The outlines stay within a
   few km of DCW's, and the areas within 1% except the smallest: Shanghai (-2%), Hong
   Kong (-5%) and Macao, which is reduced to a few points (-74%; drawn, never simulated).
   shapely 2.2 applies one tolerance to the whole coverage, so Macao cannot be spared.
6. Join: DCW's two-letter state codes are the GB/T 2260 province abbreviations; the
   table ``PROVINCES`` maps each to its adcode prefix, and the name is taken from
   prefectures.csv. The join is checked geometrically: every seat of prefectures.csv
   must fall inside its own province's outline (all do except 三沙市, see above).
7. Prefecture cells as described above (``shapely.voronoi_polygons``).

The file is deterministic: the same DCW file and prefectures.csv give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "province_outlines.geojson"
PREFECTURES = HERE / "prefectures.csv"
DCW_FILE = Path("/usr/share/gmt-dcw/dcw-gmt.nc")
DCW_VERSION = "2.1.1"

# DCW state code -> (adcode, Chinese name). The codes are the GB/T 2260 abbreviations;
# names of divisions that are in prefectures.csv are checked against it at build time.
PROVINCES: dict[str, tuple[str, str]] = {
    "BJ": ("110000", "北京市"), "TJ": ("120000", "天津市"), "HE": ("130000", "河北省"),
    "SX": ("140000", "山西省"), "NM": ("150000", "内蒙古自治区"), "LN": ("210000", "辽宁省"),
    "JL": ("220000", "吉林省"), "HL": ("230000", "黑龙江省"), "SH": ("310000", "上海市"),
    "JS": ("320000", "江苏省"), "ZJ": ("330000", "浙江省"), "AH": ("340000", "安徽省"),
    "FJ": ("350000", "福建省"), "JX": ("360000", "江西省"), "SD": ("370000", "山东省"),
    "HA": ("410000", "河南省"), "HB": ("420000", "湖北省"), "HN": ("430000", "湖南省"),
    "GD": ("440000", "广东省"), "GX": ("450000", "广西壮族自治区"), "HI": ("460000", "海南省"),
    "CQ": ("500000", "重庆市"), "SC": ("510000", "四川省"), "GZ": ("520000", "贵州省"),
    "YN": ("530000", "云南省"), "XZ": ("540000", "西藏自治区"), "SN": ("610000", "陕西省"),
    "GS": ("620000", "甘肃省"), "QH": ("630000", "青海省"), "NX": ("640000", "宁夏回族自治区"),
    "XJ": ("650000", "新疆维吾尔自治区"), "TW": ("710000", "台湾省"),
    "HK": ("810000", "香港特别行政区"), "MO": ("820000", "澳门特别行政区"),
}  # fmt: skip
NOT_IN_MODEL = {"TW", "HK", "MO"}  # prefectures.csv leaves them out (see build_prefectures.py)

RING_START = 65535
HOLE_FLAG = 1
MIN_PART_DEG2 = 0.002  # about 20-25 km2 in southern China
PRESIMPLIFY_DEG = 0.002  # about 200 m
GAP_DEG = 0.02
SIMPLIFY_DEG = 0.03  # Visvalingam-Whyatt: about the side of the largest triangle removed
GRID_DEG = 0.001
SEAT_DISC_DEG = 0.1  # the cell drawn for a seat outside every outline (三沙市)
SEAT_TOLERANCE_DEG = 0.05  # a seat this close to its outline still counts as inside
EXPECTED_IN_MODEL = 31
EXPECTED_CELLS = 337
SEATS_OUTSIDE = {"460300"}  # 三沙市: DCW's Hainan has no South China Sea islands


@dataclass(frozen=True)
class Seat:
    """A row of prefectures.csv."""

    adcode: str
    name: str
    province: str
    lat: float
    lon: float


def read_seats(path: Path = PREFECTURES) -> list[Seat]:
    """The 337 prefecture-level divisions with their seats."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [
            Seat(r["adcode"], r["name"], r["province"], float(r["lat"]), float(r["lon"]))
            for r in csv.DictReader(fh)
        ]


# --------------------------------------------------------------------------- DCW


def read_dcw(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Each DCW Chinese division as a shapely geometry, and the file's global attributes."""
    import netCDF4
    import shapely

    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        attrs = {a: str(ds.getncattr(a)) for a in ds.ncattrs()}
        geometries = {}
        for code in PROVINCES:
            x = ds.variables[f"CN{code}_lon"]
            y = ds.variables[f"CN{code}_lat"]
            raw_x = np.asarray(x[:], dtype=np.int64)
            raw_y = np.asarray(y[:], dtype=np.int64)
            lon = float(x.getncattr("min")) + raw_x / float(x.getncattr("scale"))
            lat = float(y.getncattr("min")) + raw_y / float(y.getncattr("scale"))
            starts = np.flatnonzero(raw_x == RING_START)
            if len(starts) == 0 or starts[0] != 0:
                sys.exit(f"CN{code}: data does not start with a ring marker")
            ends = np.append(starts[1:], len(raw_x))
            outer: list[Any] = []
            holes: list[Any] = []
            for s, e in zip(starts, ends, strict=True):
                if e - s - 1 < 3:
                    continue
                ring = shapely.Polygon(np.column_stack((lon[s + 1 : e], lat[s + 1 : e])))
                (holes if raw_y[s] == HOLE_FLAG else outer).append(shapely.make_valid(ring))
            geometry = shapely.union_all(outer)
            if holes:
                geometry = shapely.difference(geometry, shapely.union_all(holes))
            geometries[code] = geometry
    return geometries, attrs


def drop_islets(geometry: Any, seats: Sequence[Seat]) -> Any:
    """The parts of a division that are large, its largest, or hold a seat."""
    import shapely

    parts = shapely.get_parts(geometry)
    areas = shapely.area(parts)
    x = np.array([s.lon for s in seats])
    y = np.array([s.lat for s in seats])
    keep = [
        p
        for p, area in zip(parts, areas, strict=True)
        if area >= MIN_PART_DEG2
        or area == areas.max()
        or (len(seats) and shapely.contains_xy(p, x, y).any())
    ]
    return shapely.multipolygons(keep) if len(keep) > 1 else keep[0]


def outlines(raw: dict[str, Any], seats: Sequence[Seat]) -> dict[str, Any]:
    """Cleaned, simplified, gridded outlines that share their borders exactly."""
    import shapely

    codes = list(raw)
    thinned = []
    for code in codes:
        own = [s for s in seats if s.adcode[:2] == PROVINCES[code][0][:2]]
        thinned.append(shapely.simplify(drop_islets(raw[code], own), PRESIMPLIFY_DEG))
    print(f"cleaning the coverage ({int(shapely.get_num_coordinates(thinned).sum()):,} points)")
    clean = shapely.coverage_clean(np.array(thinned, dtype=object), gap_width=GAP_DEG)
    simple = shapely.coverage_simplify(clean, SIMPLIFY_DEG)
    gridded = shapely.set_precision(simple, GRID_DEG)
    if not shapely.coverage_is_valid(gridded):
        sys.exit("the simplified outlines overlap: lower SIMPLIFY_DEG or GRID_DEG")
    return dict(zip(codes, gridded, strict=True))


def prefecture_cells(province: dict[str, Any], seats: Sequence[Seat]) -> dict[str, tuple[Any, str]]:
    """adcode -> (cell, kind): seats' Voronoi regions within their province, cut to it."""
    import shapely

    by_prefix = {adcode[:2]: province[code] for code, (adcode, _) in PROVINCES.items()}
    cells: dict[str, tuple[Any, str]] = {}
    for prefix in sorted({s.adcode[:2] for s in seats}):
        own = [s for s in seats if s.adcode[:2] == prefix]
        outline = by_prefix[prefix]
        points = shapely.multipoints([(s.lon, s.lat) for s in own])
        if len(own) == 1:
            regions = [outline]
        else:
            frame = shapely.box(*shapely.bounds(outline)).buffer(5.0)
            regions = list(
                shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame, ordered=True))
            )
        for seat, region in zip(own, regions, strict=True):
            cell = shapely.set_precision(shapely.intersection(region, outline), GRID_DEG)
            if cell.is_empty or not shapely.contains_xy(
                shapely.buffer(cell, SEAT_TOLERANCE_DEG), seat.lon, seat.lat
            ):
                disc = shapely.set_precision(
                    shapely.Point(seat.lon, seat.lat).buffer(SEAT_DISC_DEG, 8), GRID_DEG
                )
                cells[seat.adcode] = (disc, "disc")
            else:
                cells[seat.adcode] = (cell, "voronoi")
    return cells


# --------------------------------------------------------------------------- output


def _geometry_json(geometry: Any) -> Any:
    import shapely

    return json.loads(shapely.to_geojson(geometry))


def write_geojson(
    path: Path,
    province: dict[str, Any],
    cells: dict[str, tuple[Any, str]],
    seats: Sequence[Seat],
    attrs: dict[str, str],
) -> None:
    """One feature per line, provinces then cells, each sorted by adcode."""
    by_code = {s.adcode: s for s in seats}
    features = []
    for code, (adcode, name) in sorted(PROVINCES.items(), key=lambda kv: kv[1][0]):
        properties = {
            "level": "province",
            "adcode": adcode,
            "name": name,
            "dcw_code": code,
            "in_model": code not in NOT_IN_MODEL,
        }
        features.append((properties, province[code]))
    for adcode in sorted(cells):
        cell, kind = cells[adcode]
        seat = by_code[adcode]
        properties = {
            "level": "prefecture",
            "adcode": adcode,
            "name": seat.name,
            "province": seat.province,
            "cell": kind,
        }
        features.append((properties, cell))
    header = {
        "type": "FeatureCollection",
        "name": "province_outlines",
        "source": (
            f"{attrs.get('title', 'DCW-GMT')} {attrs.get('version', '?')} "
            f"({attrs.get('source', '')}), LGPL-3+; simplified by seeds/build_province_outlines.py"
        ),
        "note": "Approximate outlines for illustration; not a surveyed standard map.",
    }
    lines = [json.dumps(header, ensure_ascii=False)[:-1] + ', "features": [']
    body = [
        json.dumps(
            {"type": "Feature", "properties": p, "geometry": _geometry_json(g)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for p, g in features
    ]
    lines.append(",\n".join(body))
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, {len(features)} features)")


# --------------------------------------------------------------------------- checks


def verify(path: Path = OUT, seats_path: Path = PREFECTURES) -> None:
    """Re-read the file and check it against prefectures.csv; exit 1 on any error."""
    import shapely

    seats = read_seats(seats_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    features = data["features"]
    prov = [f for f in features if f["properties"]["level"] == "province"]
    cells = [f for f in features if f["properties"]["level"] == "prefecture"]
    errors: list[str] = []
    in_model = {f["properties"]["name"]: f for f in prov if f["properties"]["in_model"]}
    csv_provinces = Counter(s.province for s in seats)
    if len(in_model) != EXPECTED_IN_MODEL or set(in_model) != set(csv_provinces):
        errors.append(f"provinces in the model {sorted(in_model)} != {sorted(csv_provinces)}")
    for name in csv_provinces:
        n = sum(f["properties"]["name"] == name for f in prov)
        if n != 1:
            errors.append(f"{name}: {n} outlines")
    geoms = {
        f["properties"]["adcode"][:2]: shapely.from_geojson(json.dumps(f["geometry"])) for f in prov
    }
    if not shapely.coverage_is_valid(list(geoms.values())):
        errors.append("province outlines overlap")
    outside = []
    for s in seats:
        own = geoms[s.adcode[:2]]
        if not shapely.contains_xy(own, s.lon, s.lat):
            km = shapely.distance(own, shapely.Point(s.lon, s.lat)) * 111.2
            outside.append(f"{s.adcode} {s.name} ({km:.0f} km from {s.province})")
            if s.adcode not in SEATS_OUTSIDE and km > SEAT_TOLERANCE_DEG * 111.2:
                errors.append(f"seat of {s.adcode} {s.name} is outside {s.province}")
    codes = sorted(f["properties"]["adcode"] for f in cells)
    if codes != sorted(s.adcode for s in seats) or len(codes) != EXPECTED_CELLS:
        errors.append(f"{len(codes)} prefecture cells do not match prefectures.csv")
    for f in cells:
        g = shapely.from_geojson(json.dumps(f["geometry"]))
        if not g.is_valid or g.is_empty:
            errors.append(f"cell {f['properties']['adcode']} is invalid or empty")
    size_kb = path.stat().st_size / 1024
    n_points = sum(int(shapely.get_num_coordinates(g)) for g in geoms.values())
    print(
        f"{path.name}: {size_kb:.0f} KB; {len(prov)} outlines ({len(in_model)} in the model, "
        f"{n_points:,} points), {len(cells)} prefecture cells "
        f"({sum(f['properties']['cell'] == 'disc' for f in cells)} discs)"
    )
    print(f"seats outside their province outline: {', '.join(outside) or 'none'}")
    if errors:
        print("VERIFY FAILED:\n  " + "\n  ".join(errors))
        sys.exit(1)
    print("verify: OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dcw", type=Path, default=DCW_FILE, help="path of dcw-gmt.nc")
    parser.add_argument("--check", action="store_true", help="only verify the committed file")
    args = parser.parse_args()
    if not args.check:
        if not args.dcw.is_file():
            sys.exit(f"{args.dcw} not found: apt-get install gmt-dcw, or pass --dcw")
        seats = read_seats()
        raw, attrs = read_dcw(args.dcw)
        if attrs.get("version") != DCW_VERSION:
            print(f"note: DCW-GMT version {attrs.get('version')}, tested with {DCW_VERSION}")
        province = outlines(raw, seats)
        for code, (adcode, name) in PROVINCES.items():
            if code in NOT_IN_MODEL:
                continue
            names = {s.province for s in seats if s.adcode[:2] == adcode[:2]}
            if names != {name}:
                sys.exit(f"{code}: prefectures.csv calls {adcode} {names}, expected {name}")
        import shapely

        loss = {c: float(shapely.area(province[c]) / shapely.area(raw[c])) - 1.0 for c in PROVINCES}
        print(
            "area change by simplification: "
            + ", ".join(f"{c} {v:+.1%}" for c, v in sorted(loss.items()) if abs(v) >= 0.005)
        )
        write_geojson(OUT, province, prefecture_cells(province, seats), seats, attrs)
    verify()


if __name__ == "__main__":
    main()
