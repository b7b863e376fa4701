"""A database named on the command line: an http(s) URL, or a local .mmdb / .mmdb.gz / .tar.gz."""
from __future__ import annotations

import os

from ..errors import SourceError
from ..http import describe_url
from .base import AlreadyCurrent, FetchContext, Fetched, download_conditionally


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


class UrlSource:
    name = "url"

    def __init__(self, url: str):
        self.url = url

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        return download_conditionally(context, self.url, describe_url(self.url))


class FileSource:
    name = "file"

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def fetch(self, context: FetchContext) -> Fetched:
        if not os.path.isfile(self.path):
            raise SourceError(f"{self.path} does not exist or is not a file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"{self.path} is not readable")
        return Fetched(self.path, self.path, owned=False)
