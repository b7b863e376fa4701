"""The page through the real serving stack: supervisord -> Nginx (static files, headers) -> uWSGI ->
the app, on 127.0.0.1, driven by Debian's Chromium. Checks what only that stack can break: Nginx
serving app/static with the right types, the page's own CSP surviving Nginx's header defaults, and
the caller's address for "me" coming through Nginx."""
from __future__ import annotations

import pytest
import requests

from app.http.page import CONTENT_SECURITY_POLICY, ERROR_HELP
from tests.support.native_stack import NativeStack
from tests.test_page import page_city_db, page_dns  # noqa: F401  (fixtures)
from tests.test_page_browser import assert_clean, browser, look_up, open_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(page_city_db, page_dns):
    env = {"DNS_NAMESERVERS": page_dns.nameserver, "DNS_TIMEOUT": "0.5"}
    with NativeStack(page_city_db, env=env, workers=1, threads=4) as running:
        yield running


def test_headers_and_assets_through_nginx(stack):
    page = requests.get(stack.url + "/?q=9.9.9.9", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # Exactly the page's policy, once: Nginx adds its default only where the app sent none.
    assert page.raw.headers.getlist("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
    types = {"/static/js/main.js": "javascript", "/static/page.css": "text/css", "/static/world.svg": "image/svg+xml"}
    for path, kind in types.items():
        asset = requests.get(stack.url + path, timeout=10)
        assert asset.status_code == 200 and kind in asset.headers["Content-Type"], path


def test_page_works_through_the_stack(stack, open_page):
    page, watch = open_page(stack.url)
    page.goto(stack.url + "/?q=9.9.9.9")
    assert page.locator("#cards .card h3").inner_text() == "Zurich, Zurich, Switzerland"
    look_up(page, "paris.test.example")
    assert page.locator("#cards .card").count() == 2
    assert page.evaluate("document.querySelector('#cards use.land:not([transform])').getBBox().width") > 3000
    look_up(page, "")  # "me": the browser is on 127.0.0.1, which Nginx passes on as the caller
    assert page.locator("#error").get_attribute("data-code") == "MY_ADDRESS_RESERVED"
    assert page.locator("#error h2").inner_text() == ERROR_HELP["MY_ADDRESS_RESERVED"][0]
    assert_clean(watch, failed_status=422)
