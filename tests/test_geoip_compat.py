"""/geoip/v2.1/city: the official geoip2 web-service client gets what Reader.city() gives."""
import base64
import ipaddress
import json
import socket
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


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


# Whatever bytes arrive in the header, a credential that is not accepted is a 401, never a 500.
ODD_AUTHORIZATIONS = {
    "non-ascii key": _basic("42:kéy".encode()),
    "non-utf8 key": _basic(b"42:k\xe9y"),
    "non-utf8 account": _basic(b"\xff\xfe:key"),
    "empty account": _basic(b":key"),
    "empty key": _basic(b"42:"),
    "no colon": _basic(b"42key"),
    "only a colon": _basic(b":"),
    "empty": "Basic ",
    "bad base64": "Basic !!!not-base64",
    "overlong": _basic(b"42:" + b"k" * 5000),
    "overlong, right prefix": _basic(b"42:key" + b"x" * 600),
    "nul bytes": _basic(b"42\x00:key\x00"),
    "another scheme": "Bearer 42:key",
    "no credentials after scheme": "Basic",
    "key with extra colon": _basic(b"42:key:"),
}


@pytest.mark.parametrize("header", ODD_AUTHORIZATIONS.values(), ids=ODD_AUTHORIZATIONS.keys())
def test_odd_basic_credentials_are_401_through_the_test_client(make_app, header):
    client = make_app(geoip_accounts=(("42", "key"), ("7", "other"))).test_client()
    response = client.get("/geoip/v2.1/city/81.2.69.160", headers={"Authorization": header})
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["code"] == "AUTHORIZATION_INVALID"
    assert response.headers["Content-Type"].startswith("application/vnd.maxmind.com-error+json")


def test_non_ascii_keys_are_compared_as_bytes(make_app):
    client = make_app(geoip_accounts=(("7", "other"), ("42", "kéy"))).test_client()
    ok = client.get("/geoip/v2.1/city/81.2.69.160", headers={"Authorization": _basic("42:kéy".encode())})
    assert ok.status_code == 200 and ok.get_json()["city"]["names"]["en"] == "London"
    for wrong in (_basic(b"42:key"), _basic("42:kéy".encode("latin-1")), _basic("42:kéY".encode())):
        response = client.get("/geoip/v2.1/city/81.2.69.160", headers={"Authorization": wrong})
        assert response.status_code == 401 and response.get_json()["code"] == "AUTHORIZATION_INVALID"


RAW_AUTHORIZATIONS = {
    "raw non-utf8 bytes": b"Basic \xff\xfe\xfd",
    "raw non-ascii credentials": "Basic 42:kéy".encode(),
    "base64 of non-utf8": _basic(b"42:k\xe9y").encode(),
    "no colon": _basic(b"42").encode(),
}


@pytest.mark.parametrize("header", RAW_AUTHORIZATIONS.values(), ids=RAW_AUTHORIZATIONS.keys())
def test_odd_basic_credentials_are_401_over_a_real_socket(city_db, header):
    # The header's bytes as they come off the wire, not as a client library would encode them.
    with ThreadedServer(create_app(make_config(city_db_path=str(city_db), geoip_accounts=(("42", "key"),)))) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(b"GET /geoip/v2.1/city/81.2.69.160 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                         b"Authorization: " + header + b"\r\n\r\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"401", answer[:300]
    assert json.loads(body)["code"] == "AUTHORIZATION_INVALID"


def test_every_account_is_compared(make_app, monkeypatch):
    # Constant time over the accounts too: a match on the first account does not skip the others.
    import hmac as hmac_module
    from app.http import geoip_compat as module
    calls = []
    real = hmac_module.compare_digest
    monkeypatch.setattr(module.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    accounts = (("42", "key"), ("7", "other"), ("9", "third"))
    client = make_app(geoip_accounts=accounts).test_client()
    for header, status in ((_basic(b"42:key"), 200), (_basic(b"9:nope"), 401)):
        calls.clear()
        response = client.get("/geoip/v2.1/city/81.2.69.160", headers={"Authorization": header})
        assert response.status_code == status
        assert len(calls) == len(accounts) and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)
