"""Place names for maps: romanised prefecture names and where a region's name is written.

The figures are drawn with the fonts every machine has (DejaVu), which have no Chinese
glyphs, so maps name places in Latin letters: provinces by
:data:`~sim.model.reference.PROVINCE_PINYIN`, prefectures by seeds/prefecture_names_latin.csv
(pinyin of the name without its 市 / 地区 / 盟 / 自治州 suffix and ethnic descriptors,
or the usual English form where one is established: Harbin, Hohhot, Urumqi, Lhasa...).
:func:`label_point` gives a point well inside a region to write its name at.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from sim.model.outlines import Region
from sim.model.reference import PROVINCE_PINYIN, prefecture_latin_names


def latin_name(region: Region) -> str:
    """A region's name in Latin letters: the prefecture's, or the province's pinyin.

    A municipality's province and its one cell share the adcode and the name (Beijing).
    """
    names = prefecture_latin_names()
    if region.adcode in names:
        return names[region.adcode]
    return PROVINCE_PINYIN.get(region.adcode[:2], region.adcode)


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _spans(ring: np.ndarray, y: float) -> list[tuple[float, float]]:
    """The stretches of the line at latitude ``y`` that lie inside ``ring`` (even-odd)."""
    y0, y1 = ring[:-1, 1], ring[1:, 1]
    x0, x1 = ring[:-1, 0], ring[1:, 0]
    straddles = (y0 > y) != (y1 > y)
    xs = np.sort(x0[straddles] + (y - y0[straddles]) * (x1 - x0)[straddles] / (y1 - y0)[straddles])
    return [(float(a), float(b)) for a, b in zip(xs[0::2], xs[1::2], strict=False)]


@cache
def label_point(region: Region) -> tuple[float, float]:
    """(lon, lat) well inside a region's largest ring, where its name reads clearly.

    The middle of the widest stretch inside the ring along a few lines of latitude
    around its centroid: the centroid itself can fall outside a curved province (Inner
    Mongolia, Gansu), this point cannot. Cached per region (regions hash by identity).
    """
    ring = max(region.exteriors, key=lambda r: abs(_ring_area(r)))
    lat_min, lat_max = float(ring[:, 1].min()), float(ring[:, 1].max())
    if lat_max - lat_min < 1e-9:
        return float(ring[:, 0].mean()), lat_min
    middle = float(ring[:-1, 1].mean())
    best: tuple[float, float, float] = (-1.0, float(ring[:, 0].mean()), middle)
    for y in (middle, *np.linspace(lat_min, lat_max, 11)[2:-2]):
        # Lines nearer the middle are preferred: a stretch far off it must be wider.
        weight = 1.0 - 0.5 * abs(y - middle) / (lat_max - lat_min)
        for a, b in _spans(ring, float(y)):
            if (b - a) * weight > best[0]:
                best = ((b - a) * weight, (a + b) / 2.0, float(y))
    return best[1], best[2]
