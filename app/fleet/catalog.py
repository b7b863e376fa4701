"""The databases a fleet passes from the updater to the replicas: a name (the URL segment) and the
checks update-db applies to that kind of file, so a pulled file is held to the same standard."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..updater.editions import EDITIONS
from ..updater.verify import DatabaseFacts, read_facts

# name -> update-db's verification of that kind of database: (path, known md5 or None) -> facts,
# raising InvalidDatabase. Every updater edition (app/updater/editions.py) is published and pulled
# once its path is in UpdateConfig.database_paths / PullConfig.database_paths.
CHECKS: dict[str, Callable[[str, str | None], DatabaseFacts]] = {
    name: functools.partial(read_facts, edition=name) for name in EDITIONS
}


@dataclass(frozen=True)
class FleetDatabase:
    name: str
    path: str  # the live file: in the updater's volume when publishing, the replica's when pulling

    def check(self, path: str, md5: str | None = None) -> DatabaseFacts:
        return CHECKS[self.name](path, md5)


def fleet_databases(paths: tuple[tuple[str, str], ...]) -> tuple[FleetDatabase, ...]:
    unknown = [name for name, _ in paths if name not in CHECKS]
    if unknown:
        raise ValueError(f"no verification is known for {', '.join(unknown)}")
    return tuple(FleetDatabase(name, path) for name, path in paths)
