"""Where a new database comes from (one module per kind of source) and how `--source` picks one,
for an edition (editions.py: city or asn)."""
from __future__ import annotations

from ...config import UpdateConfig
from ..errors import SourceError
from ..editions import edition_named
from .base import AlreadyCurrent, FetchContext, Fetched, Source
from .dbip import DbIpSource
from .location import FileSource, UrlSource, is_url
from .maxmind import MaxMindSource
from .snapshot import SnapshotSource

NAMED = ("maxmind", "dbip", "snapshot")


def source_named(spec: str, config: UpdateConfig, edition: str = "city") -> Source:
    """`maxmind`, `dbip`, `snapshot`, an http(s) URL, or a local file path."""
    kind = edition_named(edition)
    if spec == "maxmind":
        if not config.has_maxmind_credentials:
            raise SourceError("the maxmind source needs MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY (or MAXMIND_LICENSE_KEY_FILE)")
        return MaxMindSource(config.maxmind_host, config.maxmind_account_id, config.maxmind_license_key,
                             config.maxmind_edition_of(edition))
    if spec == "dbip":
        return DbIpSource(config.dbip_base_url, kind.dbip_file)
    if spec == "snapshot":
        if not kind.has_snapshot:
            raise SourceError(f"the snapshot holds no {kind.kind} database")
        return SnapshotSource(config.snapshot_requirement, config.effective_cache_dir, config.snapshot_index_url)
    if is_url(spec):
        return UrlSource(spec)
    return FileSource(spec)


def default_source_name(config: UpdateConfig) -> str:
    return "maxmind" if config.has_maxmind_credentials else "dbip"


def fallback_names(primary: str, edition: str = "city") -> list[str]:
    """Tried, in order, only when there is no live database at all and the primary failed."""
    names = ("dbip", "snapshot") if edition_named(edition).has_snapshot else ("dbip",)
    return [name for name in names if name != primary]


__all__ = ["AlreadyCurrent", "FetchContext", "Fetched", "Source", "source_named", "default_source_name",
           "fallback_names", "NAMED"]
