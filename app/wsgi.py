"""uWSGI entry point (`module = app.wsgi:application`). Load it after fork (lazy-apps)."""
from . import create_app

application = create_app()
