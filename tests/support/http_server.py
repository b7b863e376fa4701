"""Serve a WSGI app on 127.0.0.1 in a thread (plain HTTP or TLS), for clients that need a real socket."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ThreadedServer:
    def __init__(self, app, ssl_context=None):
        self._server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
        self.port = self._server.server_port
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
