"""Reads and validates one RFC 8805 geofeed file: `prefix,country,region,city,postal`, `#` comments.

The coordinate extension (docs/overlay.md): up to four more columns, `latitude,longitude,
accuracy_radius,time_zone` (decimal degrees, kilometres, an IANA zone name), any of them empty.

A file is taken whole or not at all: `read_geofeed` returns every entry, or raises GeofeedError
with the problems found, each with its line number. Reading is bounded whatever the file holds:
its size, each line's length and the number of problems reported are capped, so 100 MB of
garbage is refused after a stat, and a smaller one after its first few bad lines.
"""
from __future__ import annotations

import csv
import ipaddress
import math
import os
import zoneinfo
from stat import S_ISREG
from dataclasses import dataclass
from functools import lru_cache

import pycountry

from ..textlines import bounded_lines

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 4096
MAX_PROBLEMS = 20
MAX_CITY_LENGTH = 200
MAX_POSTAL_LENGTH = 32
MAX_ACCURACY_RADIUS_KM = 20_000

RFC_COLUMNS = ("prefix", "country", "region", "city", "postal")
EXTENSION_COLUMNS = ("latitude", "longitude", "accuracy_radius", "time_zone")
COLUMNS = RFC_COLUMNS + EXTENSION_COLUMNS

# What an entry can set, as OverlayEntry.fields names them (a result's overlay.fields).
OVERLAY_FIELDS = ("country", "region", "city", "postal", "location", "accuracy_radius", "time_zone")

# XK (Kosovo) is a user-assigned code, not ISO 3166-1, but the GeoIP databases and geofeeds use it.
_EXTRA_COUNTRIES = {"XK": "Kosovo"}


@dataclass(frozen=True)
class OverlayEntry:
    """One geofeed line: the prefix, where it came from, and the fields it sets (None: not set)."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    file: str
    line: int
    country: str | None = None          # ISO 3166-1 alpha-2, upper case
    country_name: str | None = None     # ISO 3166's English short name
    region: str | None = None           # ISO 3166-2, e.g. "DE-BE"
    region_name: str | None = None
    city: str | None = None
    postal: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius: int | None = None  # km
    time_zone: str | None = None

    @property
    def prefix(self) -> str:
        return str(self.network)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields this entry sets, in column order (latitude/longitude as "location")."""
        names = [name for name in ("country", "region", "city", "postal") if getattr(self, name) is not None]
        if self.latitude is not None:
            names.append("location")
        if self.accuracy_radius is not None:
            names.append("accuracy_radius")
        if self.time_zone is not None:
            names.append("time_zone")
        return tuple(names)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None  # None: the file as a whole (unreadable, too large)
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class GeofeedError(ValueError):
    """A file (or set of files) that cannot go live; `problems` says where and why."""

    def __init__(self, problems: list[Problem], truncated: bool = False):
        self.problems = problems
        self.truncated = truncated
        more = f" (stopped after {len(problems)} problems)" if truncated else ""
        super().__init__("; ".join(str(problem) for problem in problems[:3]) + (" ..." if len(problems) > 3 else "") + more)


def read_geofeed(path: str, *, max_bytes: int = MAX_FILE_BYTES, digest=None) -> list[OverlayEntry]:
    """Every entry of one file, or GeofeedError. Duplicate prefixes within the file are problems;
    across files the caller checks (it sees them all). `digest` (a hashlib object) is fed every
    line read, so that the caller can name the content it loaded."""
    problems: list[Problem] = []
    entries: list[OverlayEntry] = []
    seen: dict = {}
    name = path  # problems name the path as configured; entries name the file only (it shows in results)
    entry_file = os.path.basename(path)
    try:
        if not S_ISREG(os.stat(path).st_mode):  # a FIFO or a device would block or never end
            raise GeofeedError([Problem(name, None, "is not a regular file")])
        handle = open(path, "rb")
    except OSError as exc:
        raise GeofeedError([Problem(name, None, f"cannot be read ({exc.strerror})")]) from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise GeofeedError([Problem(name, None, f"is {size} bytes, more than the limit of {max_bytes}")])
        for number, line in enumerate(bounded_lines(handle, MAX_LINE_BYTES), 1):
            if len(problems) >= MAX_PROBLEMS:
                raise GeofeedError(problems, truncated=True)
            if line is None:
                problems.append(Problem(name, number, f"is longer than {MAX_LINE_BYTES} bytes"))
                continue
            if digest is not None:
                digest.update(line + b"\n")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(Problem(name, number, "is not valid UTF-8"))
                continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            try:
                entry = parse_line(text, entry_file, number)
            except ValueError as exc:
                problems.append(Problem(name, number, str(exc)))
                continue
            earlier = seen.get(entry.network)
            if earlier is not None:
                problems.append(Problem(name, number, f"prefix {entry.prefix} is already given on line {earlier}"))
                continue
            seen[entry.network] = number
            entries.append(entry)
    if problems:
        raise GeofeedError(problems)
    return entries


def parse_line(text: str, file: str = "-", number: int = 0) -> OverlayEntry:
    """One non-comment line -> OverlayEntry; ValueError with a readable reason."""
    try:
        columns = [column.strip() for column in next(csv.reader([text], strict=True))]
    except csv.Error:
        raise ValueError("is not a valid CSV line (unbalanced quotes)") from None
    if len(columns) < 2 or len(columns) > len(COLUMNS):
        raise ValueError(f"has {len(columns)} columns; a geofeed line has {len(RFC_COLUMNS)} "
                         f"({','.join(RFC_COLUMNS)}), or up to {len(COLUMNS)} with the coordinate extension")
    values = dict(zip(COLUMNS, columns + [""] * (len(COLUMNS) - len(columns))))
    network = _prefix(values["prefix"])
    country, country_name = _country(values["country"])
    region, region_name = _region(values["region"], country)
    city = _text(values["city"], "city", MAX_CITY_LENGTH)
    postal = _text(values["postal"], "postal code", MAX_POSTAL_LENGTH)
    latitude = _coordinate(values["latitude"], "latitude", 90)
    longitude = _coordinate(values["longitude"], "longitude", 180)
    if (latitude is None) != (longitude is None):
        raise ValueError("latitude and longitude must be given together")
    radius = _radius(values["accuracy_radius"])
    time_zone = _time_zone(values["time_zone"])
    entry = OverlayEntry(network, file, number, country, country_name, region, region_name, city, postal,
                         latitude, longitude, radius, time_zone)
    if not entry.fields:
        raise ValueError(f"prefix {entry.prefix} sets no field")
    return entry


def _shown(value: str) -> str:
    """A value quoted in a message: short and printable (the file may hold anything)."""
    value = "".join(char if char.isprintable() else "?" for char in value[:40])
    return repr(value + ("..." if len(value) >= 40 else ""))


def _prefix(value: str):
    if not value:
        raise ValueError("has no prefix")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        pass
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"invalid prefix {_shown(value)}") from None
    raise ValueError(f"invalid prefix {_shown(value)}: host bits are set")


def _country(value: str) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    code = value.upper()
    name = _countries().get(code)
    if name is None:
        raise ValueError(f"unknown country code {_shown(value)} (ISO 3166-1 alpha-2 expected)")
    return code, name


def _region(value: str, country: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    code = value.upper()
    if country is None:
        raise ValueError(f"region {_shown(value)} is given without a country")
    if not code.startswith(country + "-"):
        raise ValueError(f"region {_shown(value)} is not in country {country} (ISO 3166-2 such as {country}-XX expected)")
    name = _subdivisions().get(code)
    if name is None:
        raise ValueError(f"region {_shown(value)} is not an ISO 3166-2 subdivision of {country}")
    return code, name


def _text(value: str, what: str, limit: int) -> str | None:
    if not value:
        return None
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{what} is longer than {limit} characters or not printable")
    return value


def _coordinate(value: str, what: str, limit: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} {_shown(value)} is not a number") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise ValueError(f"{what} {_shown(value)} is not between -{limit:g} and {limit:g}")
    return number


def _radius(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_ACCURACY_RADIUS_KM:
        raise ValueError(f"accuracy radius {_shown(value)} is not a whole number of km up to {MAX_ACCURACY_RADIUS_KM}")
    return int(value)


def _time_zone(value: str) -> str | None:
    if not value:
        return None
    if value not in _zones():
        raise ValueError(f"time zone {_shown(value)} is not an IANA time zone name")
    return value


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    names = {country.alpha_2: country.name for country in pycountry.countries}
    names.update(_EXTRA_COUNTRIES)
    return names


@lru_cache(maxsize=1)
def _subdivisions() -> dict[str, str]:
    return {subdivision.code: subdivision.name for subdivision in pycountry.subdivisions}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
