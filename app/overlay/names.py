"""Names and facts of the ISO codes an overlay entry sets, in the service's languages: ISO 3166
names with the translations pycountry ships (gettext catalogues, offline), and EU membership,
which ISO does not carry."""
from __future__ import annotations

import gettext
from functools import lru_cache

import pycountry

# The member states, for `is_in_european_union` of a country the overlay sets (as of 2020-02).
EU_MEMBERS = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())

# The service's locales (document.LOCALES) as gettext names them.
_GETTEXT_LANGUAGES = {"pt-BR": "pt_BR", "zh-CN": "zh_CN"}


@lru_cache(maxsize=32)
def _catalogue(domain: str, lang: str):
    if lang == "en":
        return None
    try:
        return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[_GETTEXT_LANGUAGES.get(lang, lang)])
    except OSError:  # no catalogue for that language: English
        return None


@lru_cache(maxsize=4096)
def translated(domain: str, english: str, lang: str) -> str:
    """`english` (an ISO 3166-1 or -2 name) in `lang` when pycountry has it, else as is."""
    catalogue = _catalogue(domain, lang)
    return catalogue.gettext(english) if catalogue is not None else english


def country_name(english: str, lang: str) -> str:
    return translated("iso3166-1", english, lang)


def region_name(english: str, lang: str) -> str:
    return translated("iso3166-2", english, lang)
