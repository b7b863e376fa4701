"""Fixtures shared by the whole suite: a City database, a DNS server, an app factory."""
from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import Config
from tests.support.city_fixtures import write_city_db
from tests.support.dns_server import LATE_ZONE, STANDARD_ZONE, LocalDnsServer
from tests.support.native_stack import REPO, reachable_by_others

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "maxmind"


@pytest.fixture(scope="session", autouse=True)
def repository_reachable_by_the_stack_user():
    """The native stacks and `make run` run as `nobody` under root: it must reach the checkout."""
    reachable_by_others(REPO)


@pytest.fixture(scope="session")
def maxmind_testdata() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/testdata/maxmind is absent")
    return SHARED


@pytest.fixture
def city_db(tmp_path) -> Path:
    return write_city_db(tmp_path / "city.mmdb")


LATE_ANSWER_S = 3.0  # far past the short DNS budgets the tests use; under the long one (test_domains.py)


@pytest.fixture(scope="session")
def dns_server():
    with LocalDnsServer({**STANDARD_ZONE, **LATE_ZONE}, silent_names=["slow.test.example"],
                        late_names=dict.fromkeys(LATE_ZONE, LATE_ANSWER_S)) as server:
        yield server


def make_config(**overrides) -> Config:
    base = {"city_db_check_interval": 0.05, "dns_timeout": 1.0}
    base.update(overrides)
    return Config(**base)


@pytest.fixture
def make_app(city_db, dns_server, tmp_path):
    """make_app(**config overrides) -> Flask app with the standard City DB and the local DNS server."""
    def factory(**overrides):
        overrides.setdefault("city_db_path", str(city_db))
        overrides.setdefault("city_db_copy_dir", str(tmp_path / "copies"))
        overrides.setdefault("dns_nameservers", Config.from_env({"DNS_NAMESERVERS": dns_server.nameserver}).dns_nameservers)
        return create_app(make_config(**overrides))
    return factory


@pytest.fixture
def client(make_app):
    return make_app().test_client()
