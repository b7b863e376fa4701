"""GET /: the web page. Server-rendered (works without JavaScript); app/static/js makes it faster.

The page reads the same result document as the JSON API and turns it into words: this module
holds the display model (what each card says, where the map points), and
app/static/js/view.js mirrors it for results fetched in the browser. The browser tests compare
the two renderings of the same query.
"""
from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from datetime import datetime

from flask import Blueprint, current_app, render_template, request

from ..document import preferred_language
from ..errors import BadRequest, GeoIPError
from .arrival import arrived
from .client_address import client_address

log = logging.getLogger(__name__)

page = Blueprint("page", __name__)

MAX_ECHOED_QUERY = 300  # longer input is invalid anyway; the form shows only this much of it

# No inline script or style, nothing from another origin. 'self' for connect-src: the JSON API.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# What each error means to a person, and what they can do about it. The page renders every
# entry into a <template> too, so the script shows the same words for errors it fetches.
ERROR_HELP = {
    "INVALID_TARGET": (
        "That is not an IP address or a domain name",
        "Type an IPv4 address like 8.8.8.8, an IPv6 address like 2001:db8::1, or a domain name "
        "like example.com. Leave the box empty to look up your own address.",
    ),
    "IP_ADDRESS_RESERVED": (
        "That address is private or reserved",
        "Addresses such as 10.x.x.x, 192.168.x.x, 127.0.0.1 or fd00::/8 are used inside local "
        "networks or for special purposes, so they have no place on the map. For a domain name: "
        "every address it points to is of that kind.",
    ),
    "MY_ADDRESS_RESERVED": (
        "Your own address is private or reserved",
        "You are reaching this server from a local network, so your address has no place on the "
        "map. Type a public IP address or a domain name instead.",
    ),
    "IP_ADDRESS_NOT_FOUND": (
        "This address is not in the database",
        "The City database has no entry for it, so its location is unknown. It may be new, "
        "unused, or not announced on the internet.",
    ),
    "DOMAIN_NOT_FOUND": (
        "That domain name does not exist",
        "No IPv4 or IPv6 address is registered for it. Check the spelling.",
    ),
    "DNS_TIMEOUT": (
        "The name servers did not answer in time",
        "The domain's DNS did not reply quickly enough. Try again in a moment.",
    ),
    "DNS_FAILURE": (
        "The name could not be resolved",
        "The DNS servers answered with an error. Try again later.",
    ),
    "DATABASE_UNAVAILABLE": (
        "The location database is not loaded",
        "This server has no City database right now. An administrator needs to install one; "
        "please try again later.",
    ),
    "BAD_REQUEST": (
        "Your own address could not be determined",
        "Type an IP address or a domain name instead.",
    ),
    "NETWORK": (
        "The server could not be reached",
        "Check your connection and try again.",
    ),
    "INTERNAL_ERROR": (
        "Something went wrong on our side",
        "The lookup failed. Please try again.",
    ),
}

TIMEZONE_SOURCES = {
    "mmdb": "from the City database",
    "tz_world": "from the time-zone map (the database has none for this place)",
}

# The map's units are tenths of a degree (see tools/build_world_map.py).
MAP_SCALE = 10
MAP_MIN_HALF_WIDTH = 12.0   # degrees: enough coastline around a city to recognise where it is
MAP_MAX_HALF_WIDTH = 180.0
KM_PER_DEGREE = 111.32

# The card rendered with every field empty becomes the script's <template>: each field is None.
EMPTY_CARD = defaultdict(lambda: None)


@page.get("/")
def index():
    lang = preferred_language(request.args.get("lang"), request.accept_languages)
    query = request.args.get("q")
    context = {"query": None, "document": None, "cards": [], "error": None, "document_json": None}
    status = 200
    if query is not None:
        query = query.strip()
        context["query"] = query[:MAX_ECHOED_QUERY]
        try:
            document = _lookup(query, lang)
        except GeoIPError as error:
            context["error"] = error_view(error.code, asked_for_me=query == "")
            status = error.status
        except Exception:  # a bug must not show a person a stack trace or raw JSON
            log.exception("page lookup failed")
            context["error"] = error_view("INTERNAL_ERROR")
            status = 500
        else:
            context["document"] = document
            context["summary"] = summary_view(document, asked_for_me=query == "")
            context["cards"] = [card_view(result) for result in document["results"]]
            context["document_json"] = json.dumps(document, indent=2, ensure_ascii=False)
    response = current_app.make_response(
        (render_template("page.html", error_help=ERROR_HELP, lang=lang, empty_card=EMPTY_CARD, **context), status))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"  # results carry the live local time
    response.headers["Vary"] = "Accept-Language"
    return response


def _lookup(query: str, lang: str) -> dict:
    services = current_app.extensions["geoip"]
    if query == "":
        address = client_address(request, services.config.trusted_proxies)
        if address is None:
            raise BadRequest()
        return services.lookup.lookup_address(address, lang)
    return services.lookup.lookup(query, lang, arrived())


# -- display model (mirrored by app/static/js/view.js) -------------------------------------

def error_view(code: str, asked_for_me: bool = False) -> dict:
    if asked_for_me and code == "IP_ADDRESS_RESERVED":
        code = "MY_ADDRESS_RESERVED"
    title, advice = ERROR_HELP.get(code, ERROR_HELP["INTERNAL_ERROR"])
    return {"code": code, "title": title, "advice": advice}


def summary_view(document: dict, asked_for_me: bool = False) -> dict:
    count = len(document["results"])
    if document["kind"] == "domain":
        heading = f"{document['query']}: {count} address{'' if count == 1 else 'es'}"
    elif asked_for_me:
        heading = "Your address"
    else:
        heading = document["query"]
    withheld = document.get("addresses_withheld") or 0
    database = document.get("database") or {}
    asn_database = document.get("asn_database") or {}
    return {
        "heading": heading,
        "canonical_name": document.get("canonical_name") if document["kind"] == "domain" else None,
        "withheld": (f"{withheld} private or reserved address{' is' if withheld == 1 else 'es are'} not shown."
                     if withheld else None),
        "database": database_line(database),
        "attribution": database.get("attribution"),
        "asn_database": database_line(asn_database),
        "asn_attribution": (asn_database.get("attribution")
                            if asn_database.get("attribution") != database.get("attribution") else None),
    }


def database_line(database: dict) -> str | None:
    if not database or not database.get("type"):
        return None
    parts = [database["type"]]
    if database.get("build_date"):
        parts.append(f"built {str(database['build_date'])[:10]}")
    if database.get("source"):
        parts.append(f"source: {database['source']}")
    return ", ".join(parts)


def flag_emoji(iso_code: str | None) -> str | None:
    """Two regional-indicator letters; every system with an emoji font draws them as the flag."""
    if not iso_code or len(iso_code) != 2 or not iso_code.isascii() or not iso_code.isalpha():
        return None
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in iso_code.upper())


def _named(entry: dict | None) -> str | None:
    if not entry or not entry.get("name"):
        return None
    return f"{entry['name']} ({entry['iso_code']})" if entry.get("iso_code") else entry["name"]


def owner_text(asn: dict | None) -> str | None:
    """"AS15169, Google LLC": who announces the address's network."""
    if not asn or (asn.get("number") is None and not asn.get("organization")):
        return None
    parts = [f"AS{asn['number']}" if asn.get("number") is not None else None, asn.get("organization")]
    return ", ".join(part for part in parts if part)


def card_view(result: dict) -> dict:
    if result.get("error"):
        help_title, _ = ERROR_HELP.get(result["error"].get("code"), ERROR_HELP["INTERNAL_ERROR"])
        return defaultdict(lambda: None, ip=result["ip"], error=help_title)
    city = (result.get("city") or {}).get("name")
    regions = [sub["name"] for sub in result.get("subdivisions") or [] if sub.get("name")]
    country = result.get("country") or {}
    continent = result.get("continent") or {}
    registered = result.get("registered_country") or {}
    location = result.get("location") or {}
    timezone = result.get("timezone") or {}
    owner = owner_text(result.get("asn"))
    place_parts = [part for part in [city, *regions[:1], country.get("name")] if part]
    world_map = map_view(location)
    return {
        "ip": result["ip"],
        "error": None,
        "title": ", ".join(place_parts) if place_parts else "Location unknown",
        "flag": flag_emoji(country.get("iso_code")),
        "flag_label": f"Flag of {country['name']}" if country.get("name") else None,
        "network": result.get("network"),
        "city": city,
        "region": ", ".join(regions) or None,
        "country": _named(country),
        "eu": "Member of the European Union" if country.get("is_in_european_union") else None,
        "continent": continent.get("name"),
        "registered_country": (_named(registered)
                               if registered.get("iso_code") and registered.get("iso_code") != country.get("iso_code")
                               else None),
        "postal": (result.get("postal") or {}).get("code"),
        "asn": owner,
        "asn_network": f"network {result['asn']['network']}" if owner and result["asn"].get("network") else None,
        "coordinates": coordinates_text(location),
        "timezone": timezone_text(timezone),
        "timezone_note": timezone_note(timezone),
        "utc_offset": f"UTC{timezone['utc_offset']}" if timezone.get("utc_offset") else None,
        "local_time": clock_text(timezone.get("local_time")),
        "local_time_iso": timezone.get("local_time"),
        "timezone_name": timezone.get("name"),
        "map": world_map,
        "map_label": world_map["label"] if world_map else None,
        "osm_url": osm_url(location),
        "overlay": overlay_text(result.get("overlay")),
    }


def overlay_text(overlay: dict | None) -> str | None:
    """Which of the operator's own geofeed entries corrected this result."""
    return f"{overlay['file']} ({overlay['prefix']})" if overlay else None


def coordinates_text(location: dict) -> str | None:
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is None or longitude is None:
        return None
    text = (f"{abs(latitude):.4f}° {'N' if latitude >= 0 else 'S'}, "
            f"{abs(longitude):.4f}° {'E' if longitude >= 0 else 'W'}")
    radius = location.get("accuracy_radius")
    return f"{text} (within {radius} km)" if radius is not None else text


def timezone_text(timezone: dict) -> str | None:
    if not timezone.get("name"):
        return None
    source = TIMEZONE_SOURCES.get(timezone.get("source"))
    return f"{timezone['name']}, {source}" if source else timezone["name"]


def timezone_note(timezone: dict) -> str | None:
    if timezone.get("degraded"):
        return "The time-zone map is not answering right now, so the time zone is unknown. Try again shortly."
    if timezone.get("at_sea"):
        return "This point is at sea: the time is nautical time for this longitude."
    if timezone.get("confidence") == "approximate":
        return "Approximate: the database only knows the country, so this is the time at its centre."
    return None


def clock_text(local_time: str | None) -> str | None:
    """"Tue 21 Nov, 14:03:22": the same words app/static/js/clock.js ticks on with."""
    if not local_time:
        return None
    moment = datetime.fromisoformat(local_time)
    return f"{moment:%a} {moment.day} {moment:%b}, {moment:%H:%M:%S}"


def map_view(location: dict) -> dict | None:
    """The map's viewBox, pin and accuracy ellipse, in the world map's units.

    Plate carrée keeps the arithmetic trivial: a circle of r km is an ellipse r/111 degrees tall
    and r/(111 cos φ) degrees wide. The view widens to show the whole circle with room around it.
    """
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is None or longitude is None:
        return None
    radius_km = location.get("accuracy_radius") or 0
    radius_y = radius_km / KM_PER_DEGREE
    radius_x = min(radius_y / max(math.cos(math.radians(latitude)), 0.01), 180.0)
    half_width = min(max(MAP_MIN_HALF_WIDTH, radius_x * 2.5, radius_y * 5), MAP_MAX_HALF_WIDTH)
    half_height = half_width / 2
    center_y = min(max(latitude, -90 + half_height), 90 - half_height)
    x, y = longitude * MAP_SCALE, -latitude * MAP_SCALE
    return {
        "view_box": " ".join(_unit(value) for value in (
            (longitude - half_width) * MAP_SCALE, (-center_y - half_height) * MAP_SCALE,
            2 * half_width * MAP_SCALE, 2 * half_height * MAP_SCALE)),
        "x": _unit(x),
        "y": _unit(y),
        "rx": _unit(radius_x * MAP_SCALE),
        "ry": _unit(radius_y * MAP_SCALE),
        "pin": _unit(half_width * MAP_SCALE / 40),
        "label": f"Map around {coordinates_text(location)}",
    }


def _unit(value: float) -> str:
    """Two decimals at most, no trailing zeros, no "-0": the same text as JS Number(x.toFixed(2))."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def osm_url(location: dict) -> str | None:
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is None or longitude is None:
        return None
    radius = location.get("accuracy_radius") or 10
    # floor(x + 0.5), not round(): halves go up, as with JavaScript's Math.round in view.js
    zoom = max(3, min(16, math.floor(14 - math.log2(max(radius, 1) / 2) + 0.5)))
    return (f"https://www.openstreetmap.org/?mlat={latitude:.5f}&mlon={longitude:.5f}"
            f"#map={zoom}/{latitude:.5f}/{longitude:.5f}")
