"""Build the web page's offline world map from the time-zone polygons the project already ships.

The land is the union of every time-zone polygon except the ocean zones (Etc/GMT±N), so the map
needs no tile server and no download: timezonefinder-data is already a runtime dependency.
Territorial waters are part of the zones, which makes coasts a few kilometres generous; at the
scales the page draws that is invisible.

Output: app/static/world.svg, one <path id="land"> in a plain equirectangular projection in tenths
of a degree (x = longitude * 10, y = -latitude * 10), so the page can place a point by arithmetic
and reference the shape with <use href="/static/world.svg#land"> (same origin, CSS-styleable).

Run: .venv/bin/python tools/build_world_map.py [--tolerance 0.05] [--min-area 0.02] [--output PATH]
Needs shapely (requirements-dev.txt); the app itself does not.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon
from timezonefinder import TimezoneFinder

ROOT = Path(__file__).resolve().parent.parent


def _load_is_ocean_zone():
    """app.timezones.base holds the one definition of an ocean zone; load that file alone, since
    importing the `app` package would build the whole application just to run this tool."""
    spec = importlib.util.spec_from_file_location("_timezone_base", ROOT / "app" / "timezones" / "base.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.is_ocean_zone


is_ocean_zone = _load_is_ocean_zone()

SCALE = 10  # path units per degree: integer tenths of a degree keep the file small


def land_polygons(finder: TimezoneFinder, tolerance: float) -> list[Polygon]:
    """Every non-ocean zone polygon, simplified early so the union stays cheap."""
    polygons = []
    for zone_id, name in enumerate(finder.timezone_names):
        if is_ocean_zone(name):
            continue
        for rings in finder.get_geometry(tz_id=zone_id, use_id=True, coords_as_pairs=True):
            shell, *holes = rings
            polygon = Polygon(shell, holes).buffer(0)  # buffer(0) repairs self-touching rings
            polygon = polygon.simplify(tolerance / 4, preserve_topology=True)
            if not polygon.is_empty:
                polygons.append(polygon)
    return polygons


def land_shape(finder: TimezoneFinder, tolerance: float, min_area: float) -> MultiPolygon:
    # A tiny outward buffer before the union closes the slivers between neighbouring zones,
    # which would otherwise show as hairline seams once anti-aliased.
    union = shapely.union_all([p.buffer(tolerance / 10) for p in land_polygons(finder, tolerance)])
    union = union.simplify(tolerance, preserve_topology=True)
    parts = union.geoms if hasattr(union, "geoms") else [union]
    kept = [p for p in parts if isinstance(p, Polygon) and p.area >= min_area]
    return MultiPolygon(kept)


def ring_path(coords) -> str:
    """One closed subpath in relative integer steps (the smallest plain-SVG encoding)."""
    points = [(round(x * SCALE), round(-y * SCALE)) for x, y in coords]
    deduped = [points[0]]
    for point in points[1:]:
        if point != deduped[-1]:
            deduped.append(point)
    if len(deduped) < 3:
        return ""
    x0, y0 = deduped[0]
    steps = []
    previous = deduped[0]
    for x, y in deduped[1:]:
        steps.append(f"{x - previous[0]} {y - previous[1]}")
        previous = (x, y)
    return f"M{x0} {y0}l" + " ".join(steps).replace(" -", "-") + "z"


def svg_document(shape: MultiPolygon, release: str) -> str:
    subpaths = []
    for polygon in shape.geoms:
        for ring in [polygon.exterior, *polygon.interiors]:
            subpath = ring_path(ring.coords)
            if subpath:
                subpaths.append(subpath)
    width, height = 360 * SCALE, 180 * SCALE
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="{-width // 2} {-height // 2} {width} {height}">'
        f"<!-- Land: timezone-boundary-builder {release} (ODbL) via timezonefinder-data, "
        "ocean zones removed; built by tools/build_world_map.py -->"
        f'<path id="land" fill-rule="evenodd" d="{"".join(subpaths)}"/></svg>\n'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=0.05, help="simplification in degrees")
    parser.add_argument("--min-area", type=float, default=0.02, help="drop islands smaller than this (deg²)")
    parser.add_argument("--output", type=Path, default=ROOT / "app" / "static" / "world.svg")
    args = parser.parse_args(argv)

    finder = TimezoneFinder(in_memory=True)
    shape = land_shape(finder, args.tolerance, args.min_area)
    document = svg_document(shape, finder.data_version)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document, encoding="utf-8")
    print(f"{args.output}: {len(shape.geoms)} polygons, {len(document.encode()) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
