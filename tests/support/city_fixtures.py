"""Small City databases written by the tests with mmdb-writer, shaped like MaxMind's."""
from __future__ import annotations

import os
from pathlib import Path

from mmdb_writer import MMDBWriter, MmdbF64, MmdbU16, MmdbU32
from netaddr import IPSet


def _names(en: str, **others) -> dict:
    names = {"en": en}
    names.update({key.replace("_", "-"): value for key, value in others.items()})
    return names


def place(city=None, city_id=None, subdivision=None, country=("GB", "United Kingdom"), continent=("EU", "Europe"),
          registered=None, lat=None, lon=None, radius=None, time_zone=None, postal=None, eu=None, names=None) -> dict:
    record: dict = {}
    if city:
        record["city"] = {"geoname_id": MmdbU32(city_id or 1), "names": names or _names(city)}
    if subdivision:
        record["subdivisions"] = [{"iso_code": subdivision[0], "names": _names(subdivision[1])}]
    if country:
        record["country"] = {"iso_code": country[0], "names": _names(country[1])}
        if eu:
            record["country"]["is_in_european_union"] = True
    if continent:
        record["continent"] = {"code": continent[0], "names": _names(continent[1])}
    registered = registered or country
    if registered:
        record["registered_country"] = {"iso_code": registered[0], "names": _names(registered[1])}
    location = {}
    if lat is not None:
        location["latitude"] = MmdbF64(lat)
        location["longitude"] = MmdbF64(lon)
    if radius is not None:
        location["accuracy_radius"] = MmdbU16(radius)
    if time_zone:
        location["time_zone"] = time_zone
    if location:
        record["location"] = location
    if postal:
        record["postal"] = {"code": postal}
    return record


# The standard fixture: every shape of record the lookup service must handle.
STANDARD_RECORDS = {
    # City record with the database's own time zone.
    "81.2.69.0/24": place("London", 2643743, ("ENG", "England"), lat=51.5142, lon=-0.0931, radius=10,
                          time_zone="Europe/London", postal="EC2V",
                          names=_names("London", de="London", es="Londres", fr="Londres", ja="ロンドン", ru="Лондон")),
    # City record without a time zone: the fallback must find Europe/Paris.
    "2.2.0.0/16": place("Paris", 2988507, ("IDF", "Île-de-France"), ("FR", "France"), lat=48.8566, lon=2.3522,
                        radius=20, eu=True),
    # A second record without a time zone, at other coordinates (outage tests must miss the cache).
    "2.3.0.0/16": place("Saint-Denis", 2980916, ("IDF", "Île-de-France"), ("FR", "France"), lat=48.9362,
                        lon=2.3574, radius=20, eu=True),
    # IPv6 city record without a time zone: Madrid.
    "2a02:d5c0::/29": place("Madrid", 3117735, ("MD", "Madrid"), ("ES", "Spain"), lat=40.4168, lon=-3.7038,
                            radius=50, eu=True),
    # IPv6 record with a time zone.
    "2001:218::/32": place("Tokyo", 1850147, None, ("JP", "Japan"), ("AS", "Asia"), lat=35.69, lon=139.69,
                           radius=100, time_zone="Asia/Tokyo"),
    # Country-level record at the centroid, large radius: the time zone is only approximate.
    "3.0.0.0/16": place(None, None, None, ("US", "United States"), ("NA", "North America"), lat=37.751,
                        lon=-97.822, radius=1000, time_zone="America/Chicago"),
    # Country-level record with no coordinates at all.
    "5.5.0.0/16": place(None, None, None, ("DE", "Germany"), eu=True),
    # A point at sea (no time zone in the record): an ocean zone.
    "6.6.0.0/16": place(None, None, None, ("BR", "Brazil"), ("SA", "South America"), lat=0.5, lon=-30.0, radius=1000),
    # Routable addresses right next to reserved ranges (CGNAT ends at 100.127.255.255; 172.16/12 ends at 172.31).
    "100.128.0.0/16": place("Milton", 5803556, ("WA", "Washington"), ("US", "United States"), ("NA", "North America"),
                            lat=47.2513, lon=-122.3149, radius=22, time_zone="America/Los_Angeles"),
    "172.32.0.0/16": place("Los Angeles", 5368361, ("CA", "California"), ("US", "United States"),
                           ("NA", "North America"), lat=34.0522, lon=-118.2437, radius=20),
    # Registered elsewhere than located.
    "9.9.9.0/24": place("Zurich", 2657896, ("ZH", "Zurich"), ("CH", "Switzerland"), registered=("US", "United States"),
                        lat=47.3769, lon=8.5417, radius=5, time_zone="Europe/Zurich"),
}


def write_city_db(path, records: dict | None = None, database_type: str = "GeoIP2-City", ip_version: int = 6) -> Path:
    """Write records {cidr: record} to `path` (atomically, like the updater: temp file + rename)."""
    path = Path(path)
    writer = MMDBWriter(ip_version=ip_version, database_type=database_type,
                        languages=["en", "de", "es", "fr", "ja", "ru"], description="Easy GeoIP test database",
                        ipv4_compatible=ip_version == 6)
    for cidr, record in (STANDARD_RECORDS if records is None else records).items():
        writer.insert_network(IPSet([cidr]), record)
    temporary = path.with_name(path.name + ".tmp")
    writer.to_db_file(str(temporary))
    os.replace(temporary, path)
    return path


# ASN records: who announces some of the standard fixture's networks, and networks the City file
# does not know (an address only the ASN file knows still answers).
STANDARD_ASN = {
    "81.2.69.0/24": (20712, "Andrews & Arnold Ltd"),       # City knows it too (London)
    "2.2.0.0/16": (3215, "Orange S.A."),                   # City knows it too (Paris)
    "2001:218::/32": (2914, "NTT America, Inc."),          # IPv6, City knows it too
    "8.8.4.0/24": (15169, "Google LLC"),                   # ASN-only (8.8.8.8 stays unknown to both: tests use it so)
    "2001:4860::/32": (15169, "Google LLC"),               # ASN-only, IPv6, the same record as 8.8.4.0/24
}


def asn_record(number: int | None, organization: str | None) -> dict:
    record = {}
    if number is not None:
        record["autonomous_system_number"] = MmdbU32(number)
    if organization is not None:
        record["autonomous_system_organization"] = organization
    return record


def write_asn_db(path, records: dict | None = None, database_type: str = "GeoLite2-ASN", ip_version: int = 6) -> Path:
    """Write {cidr: (number, organization) or a record} as an ASN database (atomically)."""
    path = Path(path)
    writer = MMDBWriter(ip_version=ip_version, database_type=database_type, languages=["en"],
                        description="Easy GeoIP test ASN database", ipv4_compatible=ip_version == 6)
    for cidr, value in (STANDARD_ASN if records is None else records).items():
        writer.insert_network(IPSet([cidr]), asn_record(*value) if isinstance(value, tuple) else value)
    temporary = path.with_name(path.name + ".tmp")
    writer.to_db_file(str(temporary))
    os.replace(temporary, path)
    return path


def backdate(path, days: float) -> Path:
    """Rewrite a written database's build_epoch `days` earlier (mmdb-writer stamps "now"), atomically."""
    import maxminddb

    path = Path(path)
    with maxminddb.open_database(str(path)) as reader:
        epoch = reader.metadata().build_epoch
    data = bytearray(path.read_bytes())
    index = data.find(epoch.to_bytes(4, "big"), data.rfind(b"build_epoch"))
    data[index:index + 4] = int(epoch - days * 86400).to_bytes(4, "big")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(bytes(data))
    os.replace(temporary, path)
    return path
