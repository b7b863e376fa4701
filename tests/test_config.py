import ipaddress

import pytest

from app.config import Config, ConfigError, Nameserver


def test_defaults():
    config = Config.from_env({})
    assert config.dns_timeout == 2.0 and config.batch_max == 1000 and config.tz_database_url is None
    assert ipaddress.ip_network("127.0.0.0/8") in config.trusted_proxies


def test_values_are_parsed():
    config = Config.from_env({"DNS_NAMESERVERS": "127.0.0.1:5353, [::1]:53,9.9.9.9", "DNS_TIMEOUT": "0.5",
                              "TRUSTED_PROXIES": "10.0.0.0/8,fd00::/8", "GEOIP_ACCOUNTS": "42:key,7:other",
                              "TZ_DATABASE_URL": "postgresql://r@db/tz", "BATCH_MAX": "50",
                              "TZ_CACHE_SIZE": "0"})
    assert config.dns_nameservers == (Nameserver("127.0.0.1", 5353), Nameserver("::1", 53), Nameserver("9.9.9.9", 53))
    assert config.dns_timeout == 0.5 and config.batch_max == 50 and config.geoip_accounts == (("42", "key"), ("7", "other"))
    assert config.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert config.tz_cache_size == 0 and Config.from_env({}).tz_cache_size == 4096


@pytest.mark.parametrize("name, value", [
    ("DNS_TIMEOUT", "soon"), ("DNS_TIMEOUT", "-1"), ("BATCH_MAX", "0"), ("BATCH_MAX", "1.5"),
    ("TZ_STATEMENT_TIMEOUT_MS", "1000"), ("DNS_NAMESERVERS", "dns.google"), ("DNS_NAMESERVERS", "1.1.1.1:99999"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"), ("GEOIP_ACCOUNTS", "justakey"), ("GEOIP_CITY_DB_CHECK_INTERVAL", "5"),
    ("TZ_CACHE_SIZE", "-1"), ("TZ_CACHE_SIZE", "many"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_main_refuses_bad_config(monkeypatch, capsys):
    import main
    monkeypatch.setenv("DNS_TIMEOUT", "never")
    assert main.main([]) == 2
    assert "DNS_TIMEOUT" in capsys.readouterr().err
