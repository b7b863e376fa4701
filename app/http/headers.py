"""Headers every response carries, in one place for the Flask path and the fast path."""
from __future__ import annotations

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
)

CORS_PREFIXES = ("/api/", "/geoip/")


def cors_headers(allow_origin: str | None, method: str, path: str) -> list[tuple[str, str]]:
    """Access-Control-Allow-Origin for GET requests to the API, when configured (off by default)."""
    if not allow_origin or method != "GET" or not path.startswith(CORS_PREFIXES):
        return []
    headers = [("Access-Control-Allow-Origin", allow_origin)]
    if allow_origin != "*":
        headers.append(("Vary", "Origin"))
    return headers
