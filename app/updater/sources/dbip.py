"""DB-IP's Lite databases (City Lite, ASN Lite): a monthly .mmdb.gz each, free without an account
(CC BY 4.0).

This month's file appears some days into the month, so a 404 for it falls back to last month's.
A conditional GET (ETag / Last-Modified recorded for the live file) keeps re-checks cheap.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from ..errors import NotFoundAtSource
from .base import AlreadyCurrent, FetchContext, Fetched, download_conditionally


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class DbIpSource:
    name = "dbip"

    def __init__(self, base_url: str, file_pattern: str = "dbip-city-lite-{month}.mmdb.gz",
                 today: Callable[[], dt.date] = _utc_today):
        self.base_url = base_url.rstrip("/")
        self.file_pattern = file_pattern  # editions.py: dbip-city-lite-{month}.mmdb.gz, dbip-asn-lite-...
        self.today = today

    def monthly_urls(self) -> list[str]:
        this_month = self.today().replace(day=1)
        last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
        return [f"{self.base_url}/" + self.file_pattern.format(month=f"{month:%Y-%m}") for month in (this_month, last_month)]

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        this_month, last_month = self.monthly_urls()
        try:
            return download_conditionally(context, this_month)
        except NotFoundAtSource:
            return download_conditionally(context, last_month)
