"""A real-size ASN database for the bench, built once into the cache outside the repository.

npm `@ip-location-db/asn` ships RouteViews + DB-IP ASN data (CC BY 4.0) as CSV ranges
(`first,last,number,organization`); they are written with mmdb-writer as a GeoLite2-ASN-shaped
MMDB (`autonomous_system_number`, `autonomous_system_organization`), about what DB-IP's ASN Lite
and GeoLite2-ASN hold. Never committed; rebuilt only when the package is newer than the file.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

from bench.city_files import CityFile, cache_dir, describe

NPM_PACKAGE = "@ip-location-db/asn"
CSV_NAMES = ("asn-ipv4.csv", "asn-ipv6.csv")
DATABASE_TYPE = "GeoLite2-ASN"  # the shape (and what the service checks): built from ip-location-db's data


def ip_location_db_asn(cache: Path | None = None) -> CityFile | None:
    """The built ASN file, or None when npm has no copy and cannot fetch one (the bench says so)."""
    cache = cache or cache_dir()
    package = cache / "npm" / "node_modules" / "@ip-location-db" / "asn"
    target = cache / "ip-location-db-asn.mmdb"
    if not (package / CSV_NAMES[0]).exists() and shutil.which("npm") and os.environ.get("BENCH_NO_NPM") != "1":
        (cache / "npm").mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--silent", "--no-audit", "--no-fund", NPM_PACKAGE],
                       cwd=cache / "npm", check=False, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sources = [package / name for name in CSV_NAMES]
    if not all(source.exists() for source in sources):
        return None
    newest = max(source.stat().st_mtime for source in sources)
    if not target.exists() or target.stat().st_mtime < newest:
        build(sources, target)
    return describe("ip-location-db-asn", target)


def build(sources: list[Path], target: Path) -> int:
    """Write the CSV ranges as an ASN MMDB (atomically); returns the number of ranges."""
    from mmdb_writer import MMDBWriter, MmdbU32
    from netaddr import IPSet, iprange_to_cidrs

    writer = MMDBWriter(ip_version=6, database_type=DATABASE_TYPE, languages=["en"], ipv4_compatible=True,
                        description="Easy GeoIP bench: @ip-location-db/asn (RouteViews + DB-IP, CC BY 4.0)")
    records: dict[tuple, dict] = {}
    count = 0
    for source in sources:
        with open(source, newline="", encoding="utf-8") as handle:
            for first, last, number, organization in csv.reader(handle):
                key = (int(number), organization)
                record = records.get(key)
                if record is None:
                    record = records[key] = {"autonomous_system_number": MmdbU32(key[0]),
                                             "autonomous_system_organization": organization}
                writer.insert_network(IPSet(iprange_to_cidrs(first, last)), record)
                count += 1
    temporary = target.with_name(target.name + ".tmp")
    writer.to_db_file(str(temporary))
    os.replace(temporary, target)
    return count
