"""The dashboard: server-rendered pages and a JSON API under /api/ (gocraft/work's web UI) over `workq.Client`.

Needs the `web` extra (`pip install 'workq-redis[web]'`): Flask for routing and Jinja's autoescaping, waitress to
serve it.
"""

from workq.web.app import create_app

__all__ = ["create_app"]
