"""A database named on the command line: an http(s) URL, or a local .mmdb / .mmdb.gz / .tar.gz."""
from __future__ import annotations

import os

from ..errors import SourceError
from ..http import describe_url
from ..install import remove_quietly
from .base import AlreadyCurrent, FetchContext, Fetched


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


class UrlSource:
    name = "url"

    def __init__(self, url: str):
        self.url = url

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        detail = describe_url(self.url)
        raw = context.new_staging_file("download")
        try:
            result = context.http.download(self.url, raw, progress=context.progress,
                                           validators=context.validators_for(detail),
                                           label=detail.rsplit("/", 1)[-1] or detail)
        except BaseException:
            remove_quietly(raw)
            raise
        if result.not_modified:
            remove_quietly(raw)
            return AlreadyCurrent(detail)
        validators = {"url": detail, "etag": result.validators.etag, "last_modified": result.validators.last_modified}
        return Fetched(raw, detail, owned=True, validators=validators)


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
