"""Road travel matrix from an OpenStreetMap extract: a synthetic grid of roads.

    python -m benchmarks.roads --rows 710 --cols 710 --out /tmp/grid.osm.pbf
    /usr/bin/time -v rescue-sim travel-matrix scenarios/quick.yaml \
        --osm /tmp/grid.osm.pbf --out /tmp/od.parquet

writes a grid of roads over Henan (scenarios/quick.yaml's province) with about
4 x rows x cols directed edges (a two-way segment is two), road classes by row and
column, node places jittered so that no two routes tie; ``rescue-sim travel-matrix``
then reads it as it would a real extract.

    python benchmarks/roads.py --read /tmp/grid.osm.pbf

reads it only (the box of quick.yaml, every class of the grid) and prints the time and
the peak resident memory of the read. ``--outside N`` writes N grids as large again, side
by side east of Henan and outside the scenario's box: an extract larger than what the
scenario needs, as a national one is for a province. tests/test_roads.py builds its
small extracts with :func:`write_grid_extract` too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# Henan's box (with room to spare): the grid covers quick.yaml's stations and seats.
HENAN_SOUTH, HENAN_WEST, HENAN_NORTH, HENAN_EAST = 31.2, 110.2, 36.5, 116.8
# Boxes as large, east of Henan and each more than the box margin (50 km) from the last.
OUTSIDE_STEP = HENAN_EAST - HENAN_WEST + 1.0


def outside_boxes(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` boxes as large as Henan's, side by side east of it, outside quick.yaml's box."""
    return [
        (HENAN_SOUTH, HENAN_WEST + k * OUTSIDE_STEP, HENAN_NORTH, HENAN_EAST + k * OUTSIDE_STEP)
        for k in range(1, n + 1)
    ]


FIXED_PER_DEGREE = 10_000_000


def grid_class(line: int) -> str:
    """The road class of grid row or column ``line``: a few motorways, most tertiary."""
    if line % 12 == 0:
        return "motorway"
    if line % 6 == 0:
        return "trunk"
    if line % 3 == 0:
        return "primary"
    if line % 7 == 5:
        return "residential"
    return "secondary" if line % 2 else "tertiary"


def grid_nodes(
    rows: int, cols: int, box: Sequence[float], jitter: float = 0.3, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Node places of the grid in OSM's integers of 1e-7 degree: (lat, lon), rows x cols.

    Each node is moved by up to ``jitter`` of a cell from its grid place (a fixed draw).
    """
    south, west, north, east = box
    step_lat = (north - south) / max(1, rows - 1)
    step_lon = (east - west) / max(1, cols - 1)
    rng = np.random.default_rng(seed)
    shift = rng.uniform(-jitter / 2, jitter / 2, (2, rows, cols))
    lat = south + (np.arange(rows)[:, None] + shift[0]) * step_lat
    lon = west + (np.arange(cols)[None, :] + shift[1]) * step_lon
    return (
        np.round(lat * FIXED_PER_DEGREE).astype(np.int64),
        np.round(lon * FIXED_PER_DEGREE).astype(np.int64),
    )


def write_grid_extract(
    path: Path,
    rows: int,
    cols: int,
    box: Sequence[float] = (HENAN_SOUTH, HENAN_WEST, HENAN_NORTH, HENAN_EAST),
    *,
    segments_per_way: int = 1,
    skip: Callable[[int], bool] = lambda way_id: False,
    declare_box: bool = True,
    classes: Callable[[int], str] = grid_class,
    outside: Sequence[Sequence[float]] = (),
) -> None:
    """Write a grid of roads as an ``.osm.pbf`` (module doc).

    Node ``r * cols + c + 1`` stands at row r, column c. Row ways come first, then column
    ways, each of ``segments_per_way`` segments, numbered from 1; ``skip(way_id)`` leaves
    a way out (a road removed). ``declare_box``: the header names the grid's box, as
    Geofabrik's extracts do. ``outside``: a grid as large in each of these boxes too,
    its nodes and ways numbered after the first's.
    """
    import osmium

    boxes = [box, *outside]
    header = osmium.io.Header()
    if declare_box:
        south, west = min(b[0] for b in boxes), min(b[1] for b in boxes)
        north, east = max(b[2] for b in boxes), max(b[3] for b in boxes)
        header.add_box(osmium.osm.Box(west - 0.01, south - 0.01, east + 0.01, north + 0.01))
    with osmium.SimpleWriter(str(path), header=header, overwrite=True) as writer:
        for g, grid_box in enumerate(boxes):
            lat, lon = grid_nodes(rows, cols, grid_box)
            for r in range(rows):
                for c in range(cols):
                    place = (int(lon[r, c]) / FIXED_PER_DEGREE, int(lat[r, c]) / FIXED_PER_DEGREE)
                    node_id = g * rows * cols + r * cols + c + 1
                    writer.add_node(osmium.osm.mutable.Node(id=node_id, location=place))
        way_id = 0
        lines = []
        for g in range(len(boxes)):
            first = g * rows * cols + 1
            lines += [(r, [first + r * cols + c for c in range(cols)]) for r in range(rows)]
            lines += [(c, [first + r * cols + c for r in range(rows)]) for c in range(cols)]
        for line, nodes in lines:
            for start in range(0, len(nodes) - 1, segments_per_way):
                way_id += 1
                if skip(way_id):
                    continue
                refs = nodes[start : start + segments_per_way + 1]
                tags = {"highway": classes(line)}
                writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))


def measure_read(path: Path) -> str:
    """Read ``path`` for quick.yaml's box: seconds, peak memory, nodes and edges kept."""
    import resource
    import time

    from sim.model.loading import load_scenario
    from sim.model.network import build_network
    from sim.model.roads import Box, read_roads, scenario_places

    quick = Path(__file__).resolve().parents[1] / "scenarios" / "quick.yaml"
    box = Box.around(*scenario_places(build_network(load_scenario(quick))))
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    graph = read_roads(path, box, sorted({grid_class(line) for line in range(12)}))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"read {path} in {seconds:.1f} s: {graph.n_nodes:,} nodes and {graph.n_edges:,} edges "
        f"kept; peak resident memory {peak_mb:.0f} MB ({before_mb:.0f} MB before the read)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=710)
    parser.add_argument("--cols", type=int, default=710)
    parser.add_argument("--segments-per-way", type=int, default=10)
    parser.add_argument(
        "--outside", type=int, default=0, help="grids as large outside the scenario's box"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--read", type=Path, help="read this extract only (module doc)")
    args = parser.parse_args(argv)
    if args.read is not None:
        print(measure_read(args.read))
        return
    if args.out is None:
        parser.error("give --out (or --read)")
    outside = outside_boxes(args.outside)
    write_grid_extract(
        args.out, args.rows, args.cols, segments_per_way=args.segments_per_way, outside=outside
    )
    grids = 1 + args.outside
    segments = grids * (args.rows * (args.cols - 1) + args.cols * (args.rows - 1))
    print(f"wrote {args.out}: {grids * args.rows * args.cols:,} nodes, {segments:,} road segments")


if __name__ == "__main__":
    main()
