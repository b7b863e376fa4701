"""TtlCache with an injected clock: entries expire, the LRU is bounded, a zero TTL keeps nothing."""
from app.overlay.names import country_name, region_name
from app.ttl_cache import TtlCache


def test_entries_expire_and_the_cache_is_bounded():
    now = [0.0]
    cache = TtlCache(2, clock=lambda: now[0])
    cache.put("a", 1, 10)
    cache.put("b", 2, 5)
    assert cache.get("a") == 1 and cache.get("b") == 2
    now[0] = 5.0
    assert cache.get("b") is None and cache.get("a") == 1
    cache.put("c", 3, 10)
    cache.put("d", 4, 10)  # "a" is the least recently used now
    assert cache.get("a") is None and cache.get("c") == 3 and len(cache) == 2
    cache.put("e", 5, 0)
    assert cache.get("e") is None
    assert TtlCache(0).get("x") is None
    assert cache.info()["hits"] == 4


def test_overlay_names_in_every_language():
    assert country_name("Germany", "en") == "Germany"
    assert country_name("Germany", "de") == "Deutschland"
    assert country_name("Germany", "zh-CN") == "德国"
    assert region_name("Bayern", "fr") == "Bavière"
    assert country_name("Germany", "xx") == "Germany"
