"""MaxMind's update protocol as geoipupdate 7 speaks it.

GET {host}/geoip/updates/metadata?edition_id=E (basic auth) -> {"databases": [{"edition_id", "md5",
"date"}]}; the md5 is that of the .mmdb. When it matches the live file, stop there. Otherwise
GET {host}/geoip/databases/E/download?date=YYYYMMDD&suffix=tar.gz (basic auth), which redirects
to a storage host (requests drops the credentials on the way), and take the .mmdb from the tar.gz.
"""
from __future__ import annotations

import re
import urllib.parse

from ..errors import SourceError
from ..http import describe_url
from ..install import remove_quietly
from .base import AlreadyCurrent, FetchContext, Fetched

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class MaxMindSource:
    name = "maxmind"

    def __init__(self, host: str, account_id: str, license_key: str, edition: str):
        self.host = host.rstrip("/")
        self.auth = (account_id, license_key)
        self.edition = edition

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        md5, date = self._metadata(context)
        if context.live_md5 and context.live_md5.lower() == md5.lower():
            return AlreadyCurrent(self.edition)
        query = urllib.parse.urlencode({"date": date.replace("-", ""), "suffix": "tar.gz"})
        url = f"{self.host}/geoip/databases/{urllib.parse.quote(self.edition)}/download?{query}"
        raw = context.new_staging_file("download")
        try:
            context.http.download(url, raw, auth=self.auth, progress=context.progress, label=f"{self.edition}.tar.gz")
        except BaseException:
            remove_quietly(raw)
            raise
        return Fetched(raw, self.edition, owned=True, expected_md5=md5.lower())

    def _metadata(self, context: FetchContext) -> tuple[str, str]:
        url = f"{self.host}/geoip/updates/metadata?" + urllib.parse.urlencode({"edition_id": self.edition})
        body = context.http.get_json(url, auth=self.auth)
        databases = body.get("databases") if isinstance(body, dict) else None
        if not isinstance(databases, list):
            raise SourceError(f"{describe_url(url)} answered without a database list")
        entry = next((item for item in databases if isinstance(item, dict) and item.get("edition_id") == self.edition), None)
        if entry is None:
            raise SourceError(f"{describe_url(url)} does not list the edition {self.edition}")
        md5, date = entry.get("md5"), entry.get("date")
        if not isinstance(md5, str) or not _MD5.match(md5) or not isinstance(date, str) or not re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", date):
            raise SourceError(f"{describe_url(url)} gave no usable md5 and date for {self.edition}")
        return md5, date
