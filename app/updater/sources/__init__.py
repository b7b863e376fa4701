"""Where a new City database comes from (one module per kind) and how `--source` picks one."""
from __future__ import annotations

from ...config import UpdateConfig
from ..errors import SourceError
from .base import AlreadyCurrent, FetchContext, Fetched, Source
from .dbip import DbIpSource
from .location import FileSource, UrlSource, is_url
from .maxmind import MaxMindSource
from .snapshot import SnapshotSource

NAMED = ("maxmind", "dbip", "snapshot")


def source_named(spec: str, config: UpdateConfig) -> Source:
    """`maxmind`, `dbip`, `snapshot`, an http(s) URL, or a local file path."""
    if spec == "maxmind":
        if not config.has_maxmind_credentials:
            raise SourceError("the maxmind source needs MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY (or MAXMIND_LICENSE_KEY_FILE)")
        return MaxMindSource(config.maxmind_host, config.maxmind_account_id, config.maxmind_license_key, config.maxmind_edition)
    if spec == "dbip":
        return DbIpSource(config.dbip_base_url)
    if spec == "snapshot":
        return SnapshotSource(config.snapshot_requirement, config.effective_cache_dir, config.snapshot_index_url)
    if is_url(spec):
        return UrlSource(spec)
    return FileSource(spec)


def default_source_name(config: UpdateConfig) -> str:
    return "maxmind" if config.has_maxmind_credentials else "dbip"


def fallback_names(primary: str) -> list[str]:
    """Tried, in order, only when there is no live database at all and the primary failed."""
    return [name for name in ("dbip", "snapshot") if name != primary]


__all__ = ["AlreadyCurrent", "FetchContext", "Fetched", "Source", "source_named", "default_source_name",
           "fallback_names", "NAMED"]
