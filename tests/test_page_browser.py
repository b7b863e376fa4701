"""The web page in a real browser: Debian's Chromium driven by Playwright, against the real app
(served on 127.0.0.1 by werkzeug in a thread) with a City DB written by the test and a real DNS
server on 127.0.0.1. Every test also checks that the page logged no error and asked no other host.

EASY_GEOIP_SCREENSHOTS=1 makes test_screenshots refresh docs/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from app import create_app
from app.http.page import ERROR_HELP
from tests.support.browser import PageWatch, chromium
from tests.support.http_server import ThreadedServer
from tests.test_page import (HOSTILE_CITY, HOSTILE_OWNER, HOSTILE_REGION, SILENT_NAME,  # noqa: F401  (fixtures too)
                             page_city_db, page_config, page_dns)

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CLOCK = re.compile(r"\b[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}, \d{2}:\d{2}:\d{2}\b")
# A 4xx/5xx answer is logged by Chromium itself as a console error; the page's own code logs none.
FAILED_LOAD = "Failed to load resource"


@pytest.fixture(scope="module")
def site(page_city_db, page_dns):
    with ThreadedServer(create_app(page_config(page_city_db, page_dns.port))) as server:
        yield server.url


@pytest.fixture(scope="module")
def site_without_db(page_dns, tmp_path_factory):
    absent = tmp_path_factory.mktemp("no-db") / "city.mmdb"
    with ThreadedServer(create_app(page_config(absent, page_dns.port))) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_page(browser):
    """open_page(url, js=True, width=1200, scheme="light", **context options) -> (page, watch)."""
    contexts = []

    def factory(origin, js=True, width=1200, height=900, scheme="light", **options):
        context = browser.new_context(java_script_enabled=js, viewport={"width": width, "height": height},
                                      color_scheme=scheme, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        return page, PageWatch(page, origin)

    yield factory
    for context in contexts:
        context.close()


def assert_clean(watch, failed_status=None):
    """No console error, no exception, no request to another origin (a failed load may be allowed)."""
    allowed = ()
    if failed_status is not None:
        allowed = (f"{FAILED_LOAD}: the server responded with a status of {failed_status}",
                   f"{FAILED_LOAD}: net::ERR_FAILED")
    assert watch.problems(allow_console=allowed) == []
    assert watch.requests  # the watch saw the page's traffic at all


def look_up(page, query):
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_function("() => document.getElementById('results').getAttribute('aria-busy') === 'false'"
                           " && !(document.getElementById('error').hidden && document.getElementById('answer').hidden)")


def results_text(page) -> str:
    """What a person reads in the results, with the ticking clocks masked."""
    return CLOCK.sub("<clock>", page.inner_text("#results"))


def map_geometry(page) -> list:
    return page.eval_on_selector_all("#cards .card:not([hidden])", """cards => cards.map(card => {
        const svg = card.querySelector('[data-map]'), pin = card.querySelector('[data-map-pin]'),
              ring = card.querySelector('[data-map-accuracy]');
        return card.querySelector('.map').hidden ? null : [svg.getAttribute('viewBox'), svg.getAttribute('aria-label'),
            pin.getAttribute('cx'), pin.getAttribute('cy'), pin.getAttribute('r'),
            ring.getAttribute('rx'), ring.getAttribute('ry')];
    })""")


def test_type_and_submit_shows_results_and_the_map_pin(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/")
    look_up(page, "paris.test.example")
    assert page.url == site + "/?q=paris.test.example"
    assert page.title() == "paris.test.example: 2 addresses · Easy GeoIP"
    assert page.inner_text("#status") == "Found 2 results."
    cards = page.locator("#cards .card")
    assert cards.count() == 2
    assert cards.nth(0).locator("h3").inner_text() == "Paris, Île-de-France, France"
    assert cards.nth(1).locator("h3").inner_text() == "Madrid, Madrid, Spain"
    assert cards.nth(0).locator(".flag").get_attribute("aria-label") == "Flag of France"
    # The pin sits at the record's coordinates, inside the drawn view, on top of the loaded land.
    pin = page.evaluate("""() => {
        const card = document.querySelector('#cards .card');
        const svg = card.querySelector('[data-map]');
        const pin = card.querySelector('[data-map-pin]').getBoundingClientRect();
        const box = svg.getBoundingClientRect();
        const land = card.querySelector('use.land:not([transform])').getBBox();
        return {cx: card.querySelector('[data-map-pin]').getAttribute('cx'),
                cy: card.querySelector('[data-map-pin]').getAttribute('cy'),
                inside: pin.left >= box.left && pin.right <= box.right && pin.top >= box.top && pin.bottom <= box.bottom,
                pinWidth: pin.width, landWidth: land.width};
    }""")
    assert (pin["cx"], pin["cy"]) == ("23.52", "-488.57")
    assert pin["inside"] and pin["pinWidth"] > 4
    assert pin["landWidth"] > 3000  # world.svg#land was fetched and drawn (3600 units is the whole globe)
    assert "/static/world.svg" in " ".join(watch.requests)
    assert_clean(watch)


def test_world_map_has_land_where_land_is(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/")
    inside = page.evaluate("""async () => {
        const text = await (await fetch('/static/world.svg')).text();
        const svg = document.importNode(new DOMParser().parseFromString(text, 'image/svg+xml').documentElement, true);
        document.body.append(svg);
        const land = svg.querySelector('#land');
        const at = (lon, lat) => land.isPointInFill(new DOMPoint(lon * 10, -lat * 10));
        return {paris: at(2.35, 48.86), sahara: at(10, 23), tokyo: at(139.69, 35.69), saoPaulo: at(-46.6, -23.5),
                atlantic: at(-30, 30), pacific: at(-140, 0), indian: at(75, -20), mediterranean: at(18, 35)};
    }""")
    assert inside == {"paris": True, "sahara": True, "tokyo": True, "saoPaulo": True,
                      "atlantic": False, "pacific": False, "indian": False, "mediterranean": False}
    assert_clean(watch)


SAME_RENDERING_QUERIES = [
    "paris.test.example",        # domain, two addresses, tz from the polygons
    "9.9.9.9",                   # tz from the database, registered elsewhere
    "www.alias.test.example",    # CNAME chain
    "mixed.test.example",        # one address withheld
    "unlocated.test.example",    # an address not in the database
    "5.5.5.5",                   # no coordinates: no map
    "6.6.6.6",                   # at sea
    "3.0.0.1",                   # country centroid: approximate time zone
    "4.4.4.4",                   # next to the date line
    "hostile.test.example",      # names that are markup
    "8.8.4.4",                   # only the ASN file knows it: the owner, no place
    "81.2.69.160",               # place and owner
]


def test_script_renders_what_the_server_renders(site, open_page):
    server_page, server_watch = open_page(site, js=False)
    script_page, script_watch = open_page(site)
    script_page.goto(site + "/")
    for query in SAME_RENDERING_QUERIES:
        server_page.goto(site + "/?q=" + query)
        look_up(script_page, query)
        assert results_text(script_page) == results_text(server_page), query
        assert map_geometry(script_page) == map_geometry(server_page), query
        assert script_page.title() == server_page.title(), query
        for page in (server_page, script_page):
            links = page.eval_on_selector_all("#cards a[href]", "links => links.map(a => a.href)")
            assert all(link.startswith("https://www.openstreetmap.org/?mlat=") for link in links), query
    assert_clean(server_watch)
    assert_clean(script_watch)


def test_deep_link_with_javascript_on(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/?q=9.9.9.9")
    assert page.locator("#cards .card h3").inner_text() == "Zurich, Zurich, Switzerland"
    assert page.input_value("#q") == "9.9.9.9"
    assert not any("/api/" in url for url in watch.requests)  # rendered by the server, not fetched again
    # The local clock ticks.
    clock = page.locator("#cards .clock")
    first = clock.inner_text()
    page.wait_for_function("text => document.querySelector('#cards .clock').textContent !== text", arg=first,
                           timeout=5_000)
    assert CLOCK.fullmatch(clock.inner_text())
    assert_clean(watch)


def test_deep_link_and_form_with_javascript_off(site, open_page):
    page, watch = open_page(site, js=False)
    page.goto(site + "/?q=81.2.69.160")
    assert page.locator("#cards .card h3").inner_text() == "London, England, United Kingdom"
    assert "Europe/London, from the City database" in page.inner_text("#cards")
    assert page.locator("#copy-json").is_hidden()  # copying needs the script; the JSON itself does not
    page.click("#raw summary")
    assert json.loads(page.inner_text("#raw-json"))["results"][0]["city"]["name"] == "London"
    # The form is a plain GET without the script.
    page.fill("#q", "2001:218::1")
    with page.expect_navigation():
        page.press("#q", "Enter")
    assert page.url == site + "/?q=2001%3A218%3A%3A1"
    assert page.locator("#cards .card h3").inner_text() == "Tokyo, Japan"
    assert_clean(watch)


ERROR_CASES = [
    ("not a domain!", 400, "INVALID_TARGET"),
    ("10.1.2.3", 422, "IP_ADDRESS_RESERVED"),
    ("internal.test.example", 422, "IP_ADDRESS_RESERVED"),
    ("8.8.8.8", 404, "IP_ADDRESS_NOT_FOUND"),
    ("nope.test.example", 404, "DOMAIN_NOT_FOUND"),
    (SILENT_NAME, 504, "DNS_TIMEOUT"),
    ("", 422, "MY_ADDRESS_RESERVED"),  # the browser calls from 127.0.0.1
]


@pytest.mark.parametrize("js", [True, False], ids=["script", "no-script"])
def test_every_error_state_is_explained(site, open_page, js):
    page, watch = open_page(site, js=js)
    if js:
        page.goto(site + "/")
    for query, status, code in ERROR_CASES:
        if js:
            look_up(page, query)
        else:
            assert page.goto(site + "/?q=" + query).status == status
        error = page.locator("#error")
        assert error.is_visible() and page.locator("#answer").is_hidden(), query
        assert error.get_attribute("data-code") == code, query
        title, advice = ERROR_HELP[code]
        assert error.locator("h2").inner_text() == title and error.locator("p").inner_text() == advice, query
        assert page.title() == ("Easy GeoIP" if not js else f"{title} · Easy GeoIP"), query
        assert page.input_value("#q") == query
    allowed = tuple(f"{FAILED_LOAD}: the server responded with a status of {status}" for _, status, _ in ERROR_CASES)
    assert watch.problems(allow_console=allowed) == []


def test_missing_database_is_explained(site_without_db, open_page):
    for js in (True, False):
        page, watch = open_page(site_without_db, js=js)
        if js:
            page.goto(site_without_db + "/")
            look_up(page, "2.2.3.4")
        else:
            page.goto(site_without_db + "/?q=2.2.3.4")
        assert page.locator("#error").get_attribute("data-code") == "DATABASE_UNAVAILABLE"
        assert page.locator("#error h2").inner_text() == ERROR_HELP["DATABASE_UNAVAILABLE"][0]
        assert_clean(watch, failed_status=503)


def test_unreachable_server_and_dot_only_input_are_explained(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/")
    page.route("**/api/v1/lookup/**", lambda route: route.abort("connectionrefused"))
    look_up(page, "2.2.3.4")
    assert page.locator("#error").get_attribute("data-code") == "NETWORK"
    assert page.locator("#error h2").inner_text() == ERROR_HELP["NETWORK"][0]
    page.unroute("**/api/v1/lookup/**")
    look_up(page, "..")  # would otherwise be folded into another URL by the browser
    assert page.locator("#error").get_attribute("data-code") == "INVALID_TARGET"
    assert watch.problems(allow_console=(f"{FAILED_LOAD}: net::ERR_CONNECTION_REFUSED",)) == []


def test_history_back_and_forward(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/")
    look_up(page, "2.2.3.4")
    look_up(page, "nope.test.example")
    page.go_back()
    page.wait_for_selector("#answer:not([hidden])")
    assert page.url == site + "/?q=2.2.3.4" and page.input_value("#q") == "2.2.3.4"
    assert page.locator("#cards .card h3").inner_text() == "Paris, Île-de-France, France"
    page.go_back()
    page.wait_for_function("() => document.getElementById('answer').hidden && document.getElementById('error').hidden")
    assert page.url == site + "/" and page.input_value("#q") == ""
    page.go_forward()
    page.wait_for_selector("#answer:not([hidden])")
    assert page.locator("#cards .card h3").inner_text() == "Paris, Île-de-France, France"
    assert_clean(watch, failed_status=404)


def test_raw_json_toggle_and_copy(site, open_page):
    page, watch = open_page(site, permissions=["clipboard-read", "clipboard-write"])
    page.goto(site + "/")
    look_up(page, "dual.test.example")
    assert page.locator("#raw-json").is_hidden()
    page.click("#raw summary")
    raw = page.inner_text("#raw-json")
    document = json.loads(raw)
    assert document["query"] == "dual.test.example" and [r["ip"] for r in document["results"]] == [
        "81.2.69.161", "2001:218::1"]
    page.click("#copy-json")
    page.wait_for_function("() => document.getElementById('copy-status').textContent !== ''")
    assert page.inner_text("#copy-status") == "Copied to the clipboard."
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == document
    page.click("#raw summary")
    assert page.locator("#raw-json").is_hidden()
    assert_clean(watch)


def test_keyboard_only_and_labelled(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to results"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Easy GeoIP"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("81.2.69.160")
    page.keyboard.press("Enter")
    page.wait_for_selector("#answer:not([hidden])")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Look up"
    # Every control has a name a screen reader can say.
    assert page.get_by_label("IP address or domain name").count() == 1
    assert page.get_by_role("button", name="Look up").count() == 1
    assert page.get_by_role("search").count() == 1
    assert page.get_by_role("img", name=re.compile("^Map around 51.5142° N, 0.0931° W")).count() == 1
    assert page.get_by_role("img", name="Flag of United Kingdom").count() == 1
    # The raw JSON opens from the keyboard.
    page.focus("#raw summary")
    page.keyboard.press("Enter")
    assert page.locator("#raw-json").is_visible()
    assert_clean(watch)


@pytest.mark.parametrize("path", ["/", "/?q=paris.test.example", "/?q=hostile.test.example", "/?q=8.8.8.8",
                                  "/?q=" + "x" * 200 + ".example"])
def test_no_horizontal_scroll_at_375_px(site, open_page, path):
    page, watch = open_page(site, width=375, height=740)
    page.goto(site + path)
    if page.locator("#raw summary").is_visible():
        page.click("#raw summary")  # the widest content: long JSON lines
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1] == 375
    assert_clean(watch, failed_status=404 if "8.8.8.8" in path else 400 if "xxx" in path else None)


def test_dark_mode_follows_the_system(site, open_page):
    backgrounds = {}
    for scheme in ("light", "dark"):
        page, watch = open_page(site, scheme=scheme)
        page.goto(site + "/?q=2.2.3.4")
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert_clean(watch)
    luminance = {scheme: sum(map(int, re.findall(r"\d+", color)[:3])) for scheme, color in backgrounds.items()}
    assert luminance["light"] > 600 and luminance["dark"] < 150


CONTRAST_SCRIPT = """() => {
    const rgba = text => { const n = text.match(/[\\d.]+/g).map(Number); return [n[0], n[1], n[2], n.length > 3 ? n[3] : 1]; };
    const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const background = element => {
        for (let node = element; node; node = node.parentElement) {
            const color = rgba(getComputedStyle(node).backgroundColor);
            if (color[3] > 0) return color;
        }
        return [255, 255, 255, 1];
    };
    const worst = [];
    for (const element of document.querySelectorAll('body *')) {
        const hasText = [...element.childNodes].some(node => node.nodeType === 3 && node.textContent.trim());
        if (!hasText || !element.checkVisibility()) continue;
        const fg = luminance(rgba(getComputedStyle(element).color)), bg = luminance(background(element));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        worst.push([Math.round(ratio * 100) / 100, element.tagName + '.' + element.className,
                    element.textContent.trim().slice(0, 30)]);
    }
    return worst.sort((a, b) => a[0] - b[0]).slice(0, 3);
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_is_readable(site, open_page, scheme):
    page, watch = open_page(site, scheme=scheme)
    page.goto(site + "/?q=mixed.test.example")
    page.click("#raw summary")
    lowest = page.evaluate(CONTRAST_SCRIPT)
    assert lowest and lowest[0][0] >= 4.5, lowest  # WCAG AA for body text
    page.goto(site + "/?q=nope.test.example")
    lowest = page.evaluate(CONTRAST_SCRIPT)
    assert lowest[0][0] >= 4.5, lowest
    assert_clean(watch, failed_status=404)


def test_language_follows_the_url(site, open_page):
    page, watch = open_page(site)
    page.goto(site + "/?q=81.2.69.160&lang=ja")
    assert page.locator("#cards [data-field=city]").inner_text() == "ロンドン"
    look_up(page, "london.test.example")  # the script asks the API in the same language
    assert page.url == site + "/?q=london.test.example&lang=ja"
    assert page.locator("#cards [data-field=city]").inner_text() == "ロンドン"
    assert_clean(watch)


@pytest.mark.parametrize("query", ["7.7.7.7", "hostile.test.example"])
def test_hostile_names_stay_text(site, open_page, query):
    page, watch = open_page(site)
    page.goto(site + "/")
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    look_up(page, query)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#results img, #results script").count() == 0
    if query == "7.7.7.7":
        assert page.locator("#cards [data-field=city]").inner_text() == HOSTILE_CITY
        assert page.locator("#cards [data-field=region]").inner_text() == HOSTILE_REGION
        assert page.locator("#cards [data-field=asn]").inner_text() == f"AS64666, {HOSTILE_OWNER}"
    else:
        assert page.inner_text("[data-field=canonical_name]") == "<svg/onload=alert\\(1\\)>.test.example"
    assert_clean(watch)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_screenshots(site, open_page, tmp_path):
    shots = {"desktop.png": dict(width=1280, height=900, query="paris.test.example", scheme="light"),
             "mobile.png": dict(width=375, height=740, query="9.9.9.9", scheme="dark")}
    for name, shot in shots.items():
        page, watch = open_page(site, width=shot["width"], height=shot["height"], scheme=shot["scheme"],
                                device_scale_factor=1)
        page.goto(site + "/")
        look_up(page, shot["query"])
        page.screenshot(path=tmp_path / name, full_page=True)
        width, height = _png_size(tmp_path / name)
        assert width == shot["width"] and height >= shot["height"]
        assert_clean(watch)
    if os.environ.get("EASY_GEOIP_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
