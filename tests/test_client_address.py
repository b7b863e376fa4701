"""/api/v1/lookup/me: X-Forwarded-For counts only through trusted proxies."""
import ipaddress
import types

import pytest
from werkzeug.datastructures import Headers

from app.http.client_address import client_address

TRUSTED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"), ipaddress.ip_network("10.0.0.0/8"))


def request(peer, *xff):
    headers = Headers([("X-Forwarded-For", value) for value in xff])
    return types.SimpleNamespace(remote_addr=peer, headers=headers)


@pytest.mark.parametrize("peer, xff, expected", [
    ("81.2.69.160", [], "81.2.69.160"),
    ("81.2.69.160", ["1.2.3.4"], "81.2.69.160"),                       # untrusted peer: header ignored
    ("127.0.0.1", ["81.2.69.160"], "81.2.69.160"),
    ("127.0.0.1", ["6.6.6.6, 81.2.69.160"], "81.2.69.160"),           # spoofed left part ignored
    ("127.0.0.1", ["6.6.6.6, 81.2.69.160, 10.1.1.1"], "81.2.69.160"),  # through two trusted proxies
    ("127.0.0.1", ["6.6.6.6", "81.2.69.160"], "81.2.69.160"),          # repeated headers in order
    ("127.0.0.1", ["garbage, 81.2.69.160"], "81.2.69.160"),
    ("127.0.0.1", ["81.2.69.160, garbage"], "127.0.0.1"),              # unparseable hop ends the walk
    ("127.0.0.1", ["10.0.0.5"], "10.0.0.5"),                           # only trusted hops: the left-most
    ("::ffff:127.0.0.1", ["2001:218::1"], "2001:218::1"),
    ("::1", [" 2001:218::1 "], "2001:218::1"),
])
def test_right_most_untrusted_hop(peer, xff, expected):
    assert client_address(request(peer, *xff), TRUSTED) == expected


def test_me_endpoint_uses_forwarded_address(client):
    response = client.get("/api/v1/lookup/me", headers={"X-Forwarded-For": "10.0.0.1, 81.2.69.160"},
                          environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200 and response.get_json()["results"][0]["ip"] == "81.2.69.160"


def test_me_from_untrusted_peer_cannot_be_spoofed(client):
    response = client.get("/api/v1/lookup/me", headers={"X-Forwarded-For": "81.2.69.160"},
                          environ_base={"REMOTE_ADDR": "2.2.3.4"})
    assert response.get_json()["results"][0]["ip"] == "2.2.3.4"


def test_me_from_loopback_is_reserved(client):
    response = client.get("/api/v1/lookup/me", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 422 and "127.0.0.1" not in response.get_data(as_text=True)
