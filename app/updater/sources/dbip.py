"""DB-IP City Lite: a monthly .mmdb.gz, free without an account (CC BY 4.0).

This month's file appears some days into the month, so a 404 for it falls back to last month's.
A conditional GET (ETag / Last-Modified recorded for the live file) keeps re-checks cheap.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from ..errors import NotFoundAtSource
from ..install import remove_quietly
from .base import AlreadyCurrent, FetchContext, Fetched


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class DbIpSource:
    name = "dbip"

    def __init__(self, base_url: str, today: Callable[[], dt.date] = _utc_today):
        self.base_url = base_url.rstrip("/")
        self.today = today

    def monthly_urls(self) -> list[str]:
        this_month = self.today().replace(day=1)
        last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
        return [f"{self.base_url}/dbip-city-lite-{month:%Y-%m}.mmdb.gz" for month in (this_month, last_month)]

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        this_month, last_month = self.monthly_urls()
        try:
            return self._get(context, this_month)
        except NotFoundAtSource:
            return self._get(context, last_month)

    def _get(self, context: FetchContext, url: str) -> Fetched | AlreadyCurrent:
        raw = context.new_staging_file("download")
        try:
            result = context.http.download(url, raw, progress=context.progress, validators=context.validators_for(url),
                                           label=url.rsplit("/", 1)[-1])
        except BaseException:
            remove_quietly(raw)
            raise
        if result.not_modified:
            remove_quietly(raw)
            return AlreadyCurrent(url)
        validators = {"url": url, "etag": result.validators.etag, "last_modified": result.validators.last_modified}
        return Fetched(raw, url, owned=True, validators=validators)
