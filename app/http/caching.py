"""HTTP caching of answers, for the Flask views and the fast path alike.

A lookup of an explicit address or name is the same answer until one of its inputs changes: the
databases it was read from (Services.loaded_sources(): each one's version), the query, the
language, the field selection, the host-name option and, for a name, the addresses it resolved
to, and the host names (PTR) when asked for. The overlay counts as a source like the databases.
Those make the ETag, so a client or a cache revalidates with If-None-Match and gets
304 Not Modified. The ETag is weak: the body also carries the zone's local time, which moves
while the answer stays the same.

- explicit targets: `public, max-age=CACHE_MAX_AGE` (at most the update interval); names at
  most what is left of their A/AAAA answers' TTL (the resolver's `Resolution.ttl`), since the
  DNS may change them then; answers with host names at most DNS_ANSWER_MAX_AGE;
- `me`: `private, no-store` (it is about the caller);
- errors: `no-store`, except the stable 400s (the same input is always refused the same way);
- `Vary: Accept-Language`: without ?lang= the language comes from that header.
"""
from __future__ import annotations

import hashlib

DNS_ANSWER_MAX_AGE = 60
NO_STORE = ("Cache-Control", "no-store")
PRIVATE = ("Cache-Control", "private, no-store")
VARY = ("Vary", "Accept-Language")
STABLE_ERROR_CODES = frozenset({"INVALID_TARGET", "INVALID_FIELDS"})


_sources_digest: tuple = (None, None)  # (loaded_sources() list, the digest of its versions)


def _digest_of(sources: list) -> "hashlib.blake2b":
    """A digest fed with the sources' versions, made once per loaded_sources() list (the same
    object while the same versions serve): a copy of it costs less than feeding it again."""
    global _sources_digest
    listed, digest = _sources_digest
    if listed is not sources:
        digest = hashlib.blake2b(digest_size=12)
        for source in sources:
            digest.update(f"{source.name}={source.version};".encode())
        _sources_digest = (sources, digest)
    return digest.copy()


def etag(services, document: dict, lang: str, options: str = "") -> str:
    digest = _digest_of(services.loaded_sources())
    digest.update(f"{document.get('kind')}|{document.get('query')}|{lang}|{options}|".encode())
    for result in document.get("results") or ():
        if document.get("kind") == "domain":
            digest.update(str(result.get("ip")).encode() + b",")
        hostname = result.get("hostname")
        if hostname is not None:  # a PTR name comes from the DNS like a name's addresses
            digest.update(f"{hostname.get('name')}/{hostname.get('verified')},".encode())
    return f'W/"{digest.hexdigest()}"'


def answer_headers(services, document: dict, lang: str, options: str = "") -> list[tuple[str, str]]:
    """Cache-Control, ETag and Vary of a 200 answer about an explicit target."""
    max_age = services.config.cache_max_age
    dns_ttl = getattr(document, "dns_ttl", None)  # what is left of the name's A/AAAA answers' TTL
    if dns_ttl is not None:
        max_age = min(max_age, dns_ttl)
    elif document.get("kind") == "domain":
        max_age = min(max_age, DNS_ANSWER_MAX_AGE)
    if any("hostname" in result for result in document.get("results") or ()):
        max_age = min(max_age, DNS_ANSWER_MAX_AGE)
    return [("Cache-Control", f"public, max-age={max_age}"), ("ETag", etag(services, document, lang, options)), VARY]


def error_headers(code: str, status: int, max_age: int) -> list[tuple[str, str]]:
    if status == 400 and code in STABLE_ERROR_CODES:
        return [("Cache-Control", f"public, max-age={max_age}")]
    return [NO_STORE]


def not_modified(if_none_match: str | None, headers) -> bool:
    """If-None-Match names the answer's ETag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tag = next((value for name, value in headers if name == "ETag"), None)
    if tag is None:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(","))


def not_modified_headers(headers) -> list[tuple[str, str]]:
    """What a 304 repeats of the 200 it stands for (RFC 9110 15.4.5)."""
    return [(name, value) for name, value in headers if name in ("Cache-Control", "ETag", "Vary")]
