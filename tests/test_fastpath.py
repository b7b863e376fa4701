"""The fast path for GET /api/v1/lookup/<ip> answers exactly as the Flask route does."""
import pytest
from werkzeug.test import Client

IPS = ["81.2.69.160", "2.2.3.4", "2a02:d5c0::1", "2001:218::1", "3.0.0.1", "5.5.5.5", "6.6.6.6", "9.9.9.9",
       "2001:0218:0000::0001"]
FALLING_THROUGH = ["8.8.8.8", "10.0.0.1", "8.8.8", "01.2.3.4", "fe80::1", "paris.test.example", "me",
                   "81.2.69.160?lang=de", "dead.beef"]


def both(app, url, **kwargs):
    fast = Client(app).get(url, **kwargs)
    flask_only = Client(app.wsgi_app.flask_wsgi).get(url, **kwargs)
    return fast, flask_only


def comparable(response):
    body = response.get_json()
    for result in (body or {}).get("results", []):
        result.get("timezone", {}).pop("local_time", None)  # the clock may tick between the calls
    headers = sorted((k, v) for k, v in response.headers.items() if k != "Content-Length")
    return response.status_code, headers, body


@pytest.mark.parametrize("cors", [None, "*", "https://example.org"])
def test_fast_path_answers_like_flask(make_app, cors):
    app = make_app(cors_allow_origin=cors)
    for ip in IPS:
        before = app.wsgi_app.answered
        fast, flask_only = both(app, f"/api/v1/lookup/{ip}")
        assert app.wsgi_app.answered == before + 1, ip
        assert comparable(fast) == comparable(flask_only), ip


def test_everything_else_goes_to_flask(make_app):
    app = make_app()
    for target in FALLING_THROUGH:
        before = app.wsgi_app.answered
        fast, flask_only = both(app, f"/api/v1/lookup/{target}", environ_base={"REMOTE_ADDR": "2.2.3.4"})
        assert app.wsgi_app.answered == before, target
        assert comparable(fast) == comparable(flask_only), target
    # Accept-Language, other methods and other routes are Flask's too.
    before = app.wsgi_app.answered
    Client(app).get("/api/v1/lookup/81.2.69.160", headers={"Accept-Language": "de"})
    Client(app).head("/api/v1/lookup/81.2.69.160")
    Client(app).get("/81.2.69.160")
    assert app.wsgi_app.answered == before
