"""/geoip/v2.1/city: the official geoip2 web-service client gets what Reader.city() gives."""
import ipaddress
import json
import ssl

import geoip2.database
import geoip2.errors
import geoip2.webservice
import pytest
import trustme

from app import create_app
from app.targets import is_reserved
from tests.conftest import make_config
from tests.support.http_server import ThreadedServer


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return context, bundle


@pytest.fixture
def serve(tls, monkeypatch):
    context, bundle = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    def start(**overrides):
        return ThreadedServer(create_app(make_config(**overrides)), ssl_context=context)
    return start


def test_official_client_matches_reader_for_every_network(serve, maxmind_testdata):
    path = maxmind_testdata / "GeoIP2-City-Test.mmdb"
    networks = [next(iter(e)) for e in json.loads((maxmind_testdata / "GeoIP2-City-Test.json").read_text())]
    compared = 0
    with serve(city_db_path=str(path)) as server, geoip2.database.Reader(str(path)) as reader, \
            geoip2.webservice.Client(42, "licence", host=f"127.0.0.1:{server.port}") as client:
        for network in networks:
            first = str(ipaddress.ip_network(network)[0])
            if is_reserved(ipaddress.ip_address(first)):
                with pytest.raises(geoip2.errors.AddressNotFoundError):
                    client.city(first)
                continue
            assert client.city(first) == reader.city(first), network
            compared += 1
    assert compared > 150


def test_errors_in_maxmind_vocabulary(serve, city_db):
    with serve(city_db_path=str(city_db)) as server, \
            geoip2.webservice.Client(42, "licence", host=f"127.0.0.1:{server.port}") as client:
        with pytest.raises(geoip2.errors.AddressNotFoundError):
            client.city("8.8.8.8")
        with pytest.raises(geoip2.errors.AddressNotFoundError, match="reserved"):
            client.city("10.0.0.1")
        with pytest.raises(ValueError):
            client.city("not-an-ip")  # the client itself refuses; check the server's answer directly too
        import requests
        response = requests.get(f"{server.url}/geoip/v2.1/city/8.8.8", timeout=5)
        assert response.status_code == 400 and response.json()["code"] == "IP_ADDRESS_INVALID"
        assert response.headers["Content-Type"].startswith("application/vnd.maxmind.com-error+json")
        ok = requests.get(f"{server.url}/geoip/v2.1/city/81.2.69.160", timeout=5)
        assert ok.headers["Content-Type"].startswith("application/vnd.maxmind.com-city+json")
        assert ok.json()["traits"] == {"ip_address": "81.2.69.160", "network": "81.2.69.0/24"}


def test_accounts_are_checked_when_configured(serve, city_db):
    with serve(city_db_path=str(city_db), geoip_accounts=(("42", "right"),)) as server:
        host = f"127.0.0.1:{server.port}"
        with geoip2.webservice.Client(42, "right", host=host) as client:
            assert client.city("81.2.69.160").city.name == "London"
        with geoip2.webservice.Client(42, "wrong", host=host) as client, \
                pytest.raises(geoip2.errors.AuthenticationError):
            client.city("81.2.69.160")
        import requests
        response = requests.get(f"{server.url}/geoip/v2.1/city/81.2.69.160", timeout=5)
        assert response.status_code == 401 and response.json()["code"] == "AUTHORIZATION_INVALID"


def test_me_uses_the_caller_address(make_app):
    client = make_app().test_client()
    response = client.get("/geoip/v2.1/city/me", headers={"X-Forwarded-For": "81.2.69.160"},
                          environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200 and response.get_json()["traits"]["ip_address"] == "81.2.69.160"
