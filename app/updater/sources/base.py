"""What a source hands to the updater, and what the updater lends a source."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..http import HttpClient, Validators
from ..install import remove_quietly
from ..progress import Progress


@dataclass(frozen=True)
class Fetched:
    raw_path: str                  # .mmdb / .mmdb.gz / .tar.gz / wheel, unpacked by the updater
    detail: str                    # edition, URL (without credentials) or path, for logs and state
    owned: bool                    # a staging file to delete after unpacking (not a user's or cache file)
    expected_md5: str | None = None  # md5 of the .mmdb, when the source announces one
    validators: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AlreadyCurrent:
    """The source says the live file is its latest; nothing was downloaded."""

    detail: str


@dataclass
class FetchContext:
    http: HttpClient
    new_staging_file: Callable[[str], str]   # purpose -> path of a new empty file beside the live DB
    progress: Progress | None
    live_md5: str | None                     # None when there is no live file
    live_validators: dict                    # {"url", "etag", "last_modified"} recorded for the live file

    def validators_for(self, url: str) -> Validators | None:
        if self.live_md5 and self.live_validators.get("url") == url:
            return Validators(self.live_validators.get("etag"), self.live_validators.get("last_modified"))
        return None


class Source(Protocol):
    name: str  # maxmind | dbip | url | file | snapshot

    def fetch(self, context: FetchContext) -> Fetched | AlreadyCurrent:
        """Raises app.updater.errors.UpdateError subclasses; leaves no file behind on failure."""


def download_conditionally(context: FetchContext, url: str, detail: str | None = None) -> Fetched | AlreadyCurrent:
    """GET `url` into a staging file, conditionally when the live file came from the same place.

    `detail` names the URL in logs and state (without credentials or query); defaults to `url`.
    """
    detail = detail or url
    raw = context.new_staging_file("download")
    try:
        result = context.http.download(url, raw, progress=context.progress, validators=context.validators_for(detail),
                                       label=detail.rsplit("/", 1)[-1] or detail)
    except BaseException:
        remove_quietly(raw)
        raise
    if result.not_modified:
        remove_quietly(raw)
        return AlreadyCurrent(detail)
    validators = {"url": detail, "etag": result.validators.etag, "last_modified": result.validators.last_modified}
    return Fetched(raw, detail, owned=True, validators=validators)
