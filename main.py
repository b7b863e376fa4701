#!/usr/bin/env python3
"""Development server: python main.py [--host 127.0.0.1] [--port 5000] [--debug]. Never for production."""
import argparse
import sys

from app import create_app, logs
from app.config import Config, ConfigError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Easy GeoIP development server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (reloader, debugger): never in production")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
        logs.configure(config.log_level)
        app = create_app(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
