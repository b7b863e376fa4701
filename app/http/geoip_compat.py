"""MaxMind GeoIP2 City web-service compatible endpoint: /geoip/v2.1/city/<ip|me>.

The official `geoip2.webservice.Client` pointed at this host gets the same City model that
`geoip2.database.Reader.city()` gives on the same file, with `traits` (the network and, when an
ASN file is loaded, the autonomous system) as MaxMind's web service fills them. The lookup service
gives the body (document.maxmind_city); this module only checks credentials and answers.
"""
from __future__ import annotations

import base64
import hmac

from flask import Blueprint, request

from ..errors import GeoIPError, Unauthorized
from .api import caller_address, services
from .responses import json_response

geoip_compat = Blueprint("geoip_compat", __name__)

CITY_TYPE = "application/vnd.maxmind.com-city+json; charset=UTF-8; version=2.1"
ERROR_TYPE = "application/vnd.maxmind.com-error+json; charset=UTF-8; version=2.0"

# Our codes, in MaxMind's vocabulary and status codes.
MAXMIND_ERRORS = {
    "INVALID_TARGET": ("IP_ADDRESS_INVALID", 400),
    "IP_ADDRESS_RESERVED": ("IP_ADDRESS_RESERVED", 400),
    "IP_ADDRESS_NOT_FOUND": ("IP_ADDRESS_NOT_FOUND", 404),
}


def maxmind_error_response(error: GeoIPError):
    code, status = MAXMIND_ERRORS.get(error.code, (error.code, error.status))
    return json_response({"code": code, "error": error.message}, status, ERROR_TYPE)


# Longer than any account ID and licence key we could be given; a longer header is refused
# before it is decoded.
MAX_AUTHORIZATION_LENGTH = 1024


def _check_credentials():
    accounts = services().config.geoip_accounts
    if not accounts:
        return
    given = _basic_credentials(request.headers.get("Authorization"))
    if given is None:
        raise Unauthorized("An account ID and licence key are required (HTTP basic authentication).")
    # Bytes against bytes, every configured account compared (no early exit), so neither the
    # answer's time nor a decoding error tells which account or how much of a key matched.
    accepted = False
    for account, key in accounts:
        accepted |= hmac.compare_digest(f"{account}:{key}".encode(), given)
    if not accepted:
        raise Unauthorized()


def _basic_credentials(header: str | None) -> bytes | None:
    """`account:key` as the client sent it (any bytes), or None when there is no usable Basic
    credential: no header, another scheme, bad base64, an empty account or key, no colon."""
    if not header or len(header) > MAX_AUTHORIZATION_LENGTH:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("latin-1"), validate=True)
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    account, colon, key = decoded.partition(b":")
    if not colon or not account or not key:
        return None
    return decoded


@geoip_compat.get("/geoip/v2.1/city/<target:ip>")
def city(ip):
    _check_credentials()
    text = caller_address() if ip == "me" else ip
    return json_response(services().lookup.maxmind_city(text), 200, CITY_TYPE)
