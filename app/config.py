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
    tz_database_url: str | None = None
    tz_statement_timeout_ms: int = 200
    tz_pool_size: int = 4
    tz_retry_after: float = 1.0
    dns_timeout: float = 2.0
    dns_nameservers: tuple[Nameserver, ...] = ()
    dns_cache_size: int = 10_000
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=lambda: (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )
    batch_max: int = 1000
    batch_concurrency: int = 16
    geoip_accounts: tuple[tuple[str, str], ...] = ()
    cors_allow_origin: str | None = None
    db_source_label: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        return cls(
            city_db_path=reader.text("GEOIP_CITY_DB", cls.city_db_path),
            city_db_check_interval=reader.number("GEOIP_CITY_DB_CHECK_INTERVAL", cls.city_db_check_interval, 0.05, 1.0),
            tz_database_url=reader.text("TZ_DATABASE_URL", None),
            tz_statement_timeout_ms=int(reader.number("TZ_STATEMENT_TIMEOUT_MS", cls.tz_statement_timeout_ms, 10, 250, integer=True)),
            tz_pool_size=int(reader.number("TZ_POOL_SIZE", cls.tz_pool_size, 1, 64, integer=True)),
            tz_retry_after=reader.number("TZ_RETRY_AFTER", cls.tz_retry_after, 0.1, 60),
            dns_timeout=reader.number("DNS_TIMEOUT", cls.dns_timeout, 0.1, 30),
            dns_nameservers=reader.nameservers("DNS_NAMESERVERS"),
            dns_cache_size=int(reader.number("DNS_CACHE_SIZE", cls.dns_cache_size, 0, 10_000_000, integer=True)),
            trusted_proxies=reader.networks("TRUSTED_PROXIES", "127.0.0.0/8,::1/128"),
            batch_max=int(reader.number("BATCH_MAX", cls.batch_max, 1, 100_000, integer=True)),
            batch_concurrency=int(reader.number("BATCH_CONCURRENCY", cls.batch_concurrency, 1, 256, integer=True)),
            geoip_accounts=reader.accounts("GEOIP_ACCOUNTS"),
            cors_allow_origin=reader.text("CORS_ALLOW_ORIGIN", None),
            db_source_label=reader.text("GEOIP_CITY_DB_SOURCE", None),
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
