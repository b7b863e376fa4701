"""A steady, mixed load on a server at 127.0.0.1, recording every request's status and latency.

Fault tests start a `SteadyLoad`, break something, repair it and stop the load; the `LoadReport`
then says what failed and when, so a test can assert "no 5xx" or "degraded only while the
database was down" and the report can print latency figures.

Each client thread keeps one HTTP/1.1 keep-alive connection (http.client), walks its own slice
of the request mix, and reconnects after any connection error (which is counted, never hidden:
status 0 with the exception's name). Loops are bounded twice: by `max_seconds` and by
`max_requests` per thread, so a test that forgets to stop the load still ends.

    with SteadyLoad(port, [Request("/api/v1/lookup/81.2.69.160", "ip"), ...], threads=4) as load:
        ...fault...
    report = load.report
    assert report.count(lambda s: s.status >= 500) == 0
"""
from __future__ import annotations

import http.client
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

CONNECTION_ERROR = 0  # the status recorded when no HTTP response came back at all


@dataclass(frozen=True)
class Request:
    path: str
    kind: str = "ip"  # a label to group figures by ("ip", "domain", "page", ...)
    method: str = "GET"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sample:
    started: float  # time.monotonic() when the request was sent
    latency: float  # seconds until the whole body was read (or the error happened)
    status: int  # HTTP status, or CONNECTION_ERROR
    kind: str
    path: str
    body: bytes = b""
    error: str | None = None  # exception name for connection errors

    @property
    def finished(self) -> float:
        return self.started + self.latency


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (no interpolation: the figure is a latency that really happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[rank]


@dataclass
class LoadReport:
    samples: list[Sample]
    started: float
    stopped: float
    marks: list[tuple[float, str]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.stopped - self.started

    def select(self, kind: str | None = None, since: float | None = None, until: float | None = None,
               where: Callable[[Sample], bool] | None = None) -> list[Sample]:
        """Samples of one kind that were *sent* in [since, until)."""
        return [s for s in self.samples
                if (kind is None or s.kind == kind)
                and (since is None or s.started >= since)
                and (until is None or s.started < until)
                and (where is None or where(s))]

    def count(self, where: Callable[[Sample], bool], **selection) -> int:
        return len(self.select(where=where, **selection))

    def statuses(self, **selection) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.select(**selection):
            counts[sample.status] = counts.get(sample.status, 0) + 1
        return dict(sorted(counts.items()))

    def failures(self, **selection) -> list[Sample]:
        """Connection errors and 5xx: what a client would call a failed request."""
        return self.select(where=lambda s: s.status == CONNECTION_ERROR or s.status >= 500, **selection)

    def latency(self, fraction: float, **selection) -> float | None:
        return percentile([s.latency for s in self.select(**selection)], fraction)

    def summary(self, **selection) -> dict:
        """Figures for the report: count, rate, statuses and p50/p95/p99/max latency in ms."""
        chosen = self.select(**selection)
        latencies = [s.latency for s in chosen]

        def ms(value):
            return None if value is None else round(value * 1000, 1)

        window = (selection.get("until") or self.stopped) - (selection.get("since") or self.started)
        return {
            "requests": len(chosen),
            "per_second": round(len(chosen) / window, 1) if window > 0 else None,
            "statuses": self.statuses(**selection),
            "p50_ms": ms(percentile(latencies, 0.50)),
            "p95_ms": ms(percentile(latencies, 0.95)),
            "p99_ms": ms(percentile(latencies, 0.99)),
            "max_ms": ms(max(latencies) if latencies else None),
        }

    def mark_time(self, label: str) -> float:
        for when, name in self.marks:
            if name == label:
                return when
        raise KeyError(label)


class SteadyLoad:
    """Client threads against 127.0.0.1:`port`, each cycling through `requests`.

    `pause` is the think time between one thread's requests (0 = back to back); `keep_bodies`
    keeps response bodies of non-2xx answers (and of every answer when "all"), for checks on
    what a failure said.
    """

    def __init__(self, port: int, requests: Iterable[Request], *, threads: int = 4, pause: float = 0.0,
                 timeout: float = 10.0, max_seconds: float = 120.0, max_requests: int = 200_000,
                 keep_bodies: str = "errors", host: str = "127.0.0.1", error_pause: float = 0.01,
                 one_request_per_connection: bool = False):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("load is only ever sent to the loopback interface")
        self.port = port
        self.host = host
        self.requests = list(requests)
        if not self.requests:
            raise ValueError("no requests to send")
        self.threads = threads
        self.pause = pause
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.keep_bodies = keep_bodies
        self.error_pause = error_pause
        self.one_request_per_connection = one_request_per_connection
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._marks: list[tuple[float, str]] = []
        self._workers: list[threading.Thread] = []
        self._started = 0.0
        self.report: LoadReport | None = None

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "SteadyLoad":
        self._started = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> LoadReport:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        with self._lock:
            self.report = LoadReport(sorted(self._samples, key=lambda s: s.started), self._started,
                                     time.monotonic(), list(self._marks))
        return self.report

    def __enter__(self) -> "SteadyLoad":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- during the run -------------------------------------------------------------------
    def mark(self, label: str) -> float:
        """Record when something happened (fault injected, repaired) on the load's clock."""
        now = time.monotonic()
        with self._lock:
            self._marks.append((now, label))
        return now

    def snapshot(self) -> LoadReport:
        with self._lock:
            return LoadReport(sorted(self._samples, key=lambda s: s.started), self._started, time.monotonic(),
                              list(self._marks))

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Block until `count` requests have completed (the load is really flowing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._samples) >= count:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"fewer than {count} requests completed in {timeout:g} s")

    # -- one client -----------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _run(self, index: int) -> None:
        connection = self._connect()
        # Each thread starts at its own share of the mix, so threads do not send the same request
        # at the same moment (a per-worker cache would then hide what the test wants to see).
        offset = index * len(self.requests) // self.threads
        mix = itertools.islice(itertools.cycle(self.requests), offset, None)
        deadline = self._started + self.max_seconds
        sent = 0
        try:
            for request in mix:
                if self._stop.is_set() or sent >= self.max_requests or time.monotonic() >= deadline:
                    break
                sample, connection = self._send(connection, request)
                sent += 1
                with self._lock:
                    self._samples.append(sample)
                if sample.status == CONNECTION_ERROR:
                    # A refused connection fails in microseconds; without a pause one thread would
                    # log thousands of failures per second of outage and the counts would mean little.
                    self._stop.wait(self.error_pause)
                elif self.pause:
                    self._stop.wait(self.pause)
        finally:
            connection.close()

    def _send(self, connection: http.client.HTTPConnection, request: Request):
        started = time.monotonic()
        try:
            headers = dict(request.headers)
            if self.one_request_per_connection:
                headers["Connection"] = "close"
            if request.body is not None:
                headers.setdefault("Content-Type", "application/json")
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            latency = time.monotonic() - started
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                connection.close()
                connection = self._connect()
            keep = self.keep_bodies == "all" or (self.keep_bodies == "errors" and response.status >= 400)
            return Sample(started, latency, response.status, request.kind, request.path, body if keep else b""), connection
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            latency = time.monotonic() - started
            connection.close()
            return Sample(started, latency, CONNECTION_ERROR, request.kind, request.path, error=type(exc).__name__), \
                self._connect()
