"""What every time-zone index answers, whatever holds the polygons (PostGIS or in-process)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ZoneMatch:
    name: str          # IANA name, e.g. "Europe/Paris" or "Etc/GMT+2"
    at_sea: bool       # the point lies in an ocean zone (Etc/GMT±N) outside any territorial waters


class TimezoneIndex(Protocol):
    backend: str  # "postgis" or "embedded"
    # Which data answers (compared by equality): a tz_world reload gives a new one, so the lookup
    # service's cache of answers starts again. Cheap to read on every lookup.
    version: object

    def zone_at(self, latitude: float, longitude: float) -> ZoneMatch | None:
        """The zone containing the point, or None where no polygon covers it.

        Raises app.errors.TimezoneBackendUnavailable when the backend cannot answer now
        (PostGIS down, slow past its statement timeout); the caller degrades, never fails.
        """

    def status(self) -> dict:
        """For /readyz and `cli.py status`: {"backend", "state" ("ok"|"unavailable"), "detail",
        "data_release", "attribution"}. Cheap: may probe the backend, bounded by its timeout."""

    def close(self) -> None: ...


def is_ocean_zone(name: str) -> bool:
    return name.startswith("Etc/GMT")
