"""Docker HEALTHCHECK: healthy when /readyz answers 200 through Nginx (so Nginx, uWSGI and the app,
with a City database loaded, are all up). Uses only the standard library: the image has no curl.
Another URL may be given (the updater's publish endpoint: http://127.0.0.1:8081/healthz).
The engine's --timeout bounds a check (it kills this process); the socket timeout here is only a
backstop, never shorter, so a slow answer on a loaded host is the engine's call."""
import sys
import urllib.error
import urllib.request

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/readyz"

try:
    with urllib.request.urlopen(URL, timeout=30) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"healthcheck: {URL}: {exc}", file=sys.stderr)
    sys.exit(1)
