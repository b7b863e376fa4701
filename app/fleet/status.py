"""What /readyz says about a replica's puller: is the updater reachable and its database current?

A replica serves whatever it has whatever the puller says; this only tells operators (and /readyz's
"degraded") that it may fall behind: the updater is unreachable or offers a file that fails
verification ("failing"), or nobody has checked for a while ("stalled": the puller is not running).
"""
from __future__ import annotations

import time

from ..config import PullConfig
from ..updater.status import iso_time
from .pull import PullState

STALLED_AFTER_INTERVALS = 3
STALLED_SLACK = 60.0


def pull_readiness(config: PullConfig, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    databases = {}
    for name, path in config.database_paths:
        state = PullState.load(path)
        if state.last_check is None:
            condition = "pending"
        elif now - state.last_check > STALLED_AFTER_INTERVALS * config.interval + STALLED_SLACK:
            condition = "stalled"
        elif state.last_outcome in ("failed", "refused"):
            condition = "failing"
        elif state.last_outcome == "unpublished":
            condition = "unpublished"  # the updater has none (yet): not this replica's trouble
        else:
            condition = "ok"
        databases[name] = {"state": condition, "last_check": iso_time(state.last_check),
                           "last_success": iso_time(state.last_success), "last_outcome": state.last_outcome,
                           "error": state.last_error_code, "detail": state.last_error, "sha256": state.sha256}
    return {"publisher": config.url, "interval": config.interval,
            "ok": all(entry["state"] in ("ok", "pending", "unpublished") for entry in databases.values()), "databases": databases}
