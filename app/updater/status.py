"""What `cli.py status` says about the City database: its age and origin, and the updater's last check."""
from __future__ import annotations

import os
import time

import maxminddb

from .install import previous_path
from .state import UpdateState


def describe_live_database(live_path: str, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    state = UpdateState.load(live_path)
    info = {"path": live_path, "exists": os.path.exists(live_path), "database_type": None, "build_date": None,
            "age_days": None, "source": state.source, "source_detail": state.source_detail,
            "fallback": state.fallback, "installed_at": iso_time(state.installed_at), "last_check": iso_time(state.last_check),
            "last_outcome": state.last_outcome, "last_error": state.last_error,
            "last_success": iso_time(state.last_success), "previous_available": os.path.exists(previous_path(live_path))}
    if info["exists"]:
        try:
            with maxminddb.open_database(live_path, maxminddb.MODE_MMAP_EXT) as reader:
                meta = reader.metadata()
            info["database_type"] = meta.database_type
            info["build_date"] = time.strftime("%Y-%m-%d", time.gmtime(meta.build_epoch))
            info["age_days"] = round((now - meta.build_epoch) / 86400, 1)
        except (maxminddb.InvalidDatabaseError, OSError, ValueError) as exc:
            info["error"] = f"unreadable: {str(exc)[:120]}"
    return info


def status_lines(live_path: str) -> list[str]:
    """Human lines for `cli.py status` (which shows the file's type and age itself): origin and last check."""
    info = describe_live_database(live_path)
    if info["source"]:
        origin = info["source"] + (" (fallback)" if info["fallback"] else "")
        detail = f": {info['source_detail']}" if info["source_detail"] else ""
        lines = [f"source {origin}{detail}, installed {info['installed_at'] or 'at an unknown time'}"]
    else:
        lines = ["source unknown (not installed by update-db)" if info["exists"] else "no database yet: run `cli.py update-db`"]
    if info["last_check"]:
        line = f"last check {info['last_check']} ({info['last_outcome']})"
        if info["last_outcome"] == "failed":
            line += f", last success {info['last_success'] or 'never'}"
        lines.append(line)
        if info["last_error"]:
            lines.append(f"last error: {info['last_error']}")
    else:
        lines.append("last check: never")
    if info["previous_available"]:
        lines.append("previous database kept: `cli.py update-db --rollback` restores it")
    return lines


def iso_time(epoch: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None
