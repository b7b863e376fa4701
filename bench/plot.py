"""The throughput curve (HTTP path, Easy GeoIP and the ceiling, 1..64 connections) as a PNG."""
from __future__ import annotations

from pathlib import Path


def throughput_png(http: dict, path: Path, title_note: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to the file
    import matplotlib.pyplot as plt

    curve = http["curve"]
    connections = curve["connections"]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    axis.plot(connections, curve["ceiling_requests_per_s"], marker="o", label="ceiling: raw WSGI app, plain Nginx + uWSGI")
    axis.plot(connections, curve["app_requests_per_s"], marker="s", label="Easy GeoIP: GET /api/v1/lookup/<ip>")
    axis.set_xscale("log", base=2)
    axis.set_xticks(connections, [str(count) for count in connections])
    axis.set_xlabel("concurrent connections (wrk)")
    axis.set_ylabel("requests per second")
    axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="best", fontsize=8)
    axis.set_title(f"HTTP throughput, {http['workers']} uWSGI workers × {http['uwsgi_threads']} threads"
                   + (f"\n{title_note}" if title_note else ""), fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
