"""MaxMind GeoIP2 City web-service compatible endpoint: /geoip/v2.1/city/<ip|me>.

The official `geoip2.webservice.Client` pointed at this host gets the same City model that
`geoip2.database.Reader.city()` gives on the same file: the raw record plus `traits`.
"""
from __future__ import annotations

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


def _check_credentials():
    accounts = services().config.geoip_accounts
    if not accounts:
        return
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or not auth.password:
        raise Unauthorized("An account ID and licence key are required (HTTP basic authentication).")
    given = (auth.username, auth.password)
    if not any(hmac.compare_digest(f"{a}:{k}", f"{given[0]}:{given[1]}") for a, k in accounts):
        raise Unauthorized()


@geoip_compat.get("/geoip/v2.1/city/<target:ip>")
def city(ip):
    _check_credentials()
    text = caller_address() if ip == "me" else ip
    address, record, network, _info = services().lookup.record(text)
    body = dict(record)
    traits = dict(body.get("traits") or {})
    traits["ip_address"] = str(address)
    traits["network"] = network
    body["traits"] = traits
    return json_response(body, 200, CITY_TYPE)
