"""The studio's ASGI app: static pages, the playground's WebSocket and the pages' routes.

Each page is one static HTML file under ``static/`` that loads small ES modules; every
number it shows comes from a route here (the server computes, the page shows).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from twinnet.studio import playground
from twinnet.studio.backprop import routes as backprop_routes
from twinnet.studio.runs import routes as runs_routes

STATIC = Path(__file__).resolve().parent / "static"

# url path -> the page's HTML file under static/
PAGES = {
    "/": "playground.html",
    "/backprop": "backprop.html",
    "/runs": "runs.html",
}


def _page(filename: str):
    async def endpoint(request):
        return FileResponse(STATIC / filename, media_type="text/html", headers={"Cache-Control": "no-cache"})

    return endpoint


def create_app(runs_dir: str | Path = "runs") -> Starlette:
    """The studio app. ``app.state.runs_dir`` is the folder the runs page lists;
    ``app.state.sessions`` holds the playground's training sessions (one per WebSocket)."""
    sessions = playground.SessionRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        sessions.stop_all()  # server shutdown: every training thread stops and is joined

    routes = [
        *(Route(path, _page(name)) for path, name in PAGES.items()),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        *playground.routes,
        *backprop_routes,
        *runs_routes,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runs_dir = Path(runs_dir)
    app.state.sessions = sessions
    return app
