"""Easy GeoIP: where is this IP address or domain?

`create_app` (app/web.py) is imported when it is first asked for, so that what needs no HTTP
layer (cli.py, its bulk lookups and their worker processes) does not import Flask.
"""


def __getattr__(name: str):
    if name == "create_app":
        from .web import create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
