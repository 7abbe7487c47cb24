"""The dashboard's web server: the page, `/api/state`, static files and `/health` on a uvicorn thread."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from mocks.common.threaded_server import ThreadedServer
from popsync.dashboard.state import RunView
from popsync.exceptions import ServiceError

__all__ = ["STATIC_DIR", "DashboardServer", "create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Live figures: a browser or a proxy must never show an old snapshot.
_NO_STORE = {"Cache-Control": "no-store"}


def create_app(view: RunView) -> FastAPI:
    """The dashboard app over one `RunView`; everything it serves is local (works offline)."""
    app = FastAPI(title="popsync dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(view.snapshot(), headers=_NO_STORE)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


class DashboardServer(ThreadedServer):
    """`create_app(view)` served by uvicorn on a background thread; also starts and stops the view.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before the
    thread runs. Use as a context manager or call `start()`/`stop()`; failures raise `ServiceError`.
    """

    def __init__(
        self, view: RunView, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 30.0
    ) -> None:
        self.view = view
        super().__init__(
            create_app(view),
            name="dashboard server",
            error=ServiceError,
            host=host,
            port=port,
            thread_name="popsync-dashboard",
            access_log=False,  # one poll a second per open page: not worth a log line each
            log_level="warning",
            graceful_shutdown_s=2,
            startup_timeout=startup_timeout,
            bind_hint="choose another --port",
        )

    @property
    def url(self) -> str:
        """`http://host:port/` of the running server."""
        return f"{self.base_url}/"

    def start(self) -> str:
        """Bind, start the view's sampling, serve, wait until `/health` answers; returns the page's URL."""
        super().start()
        return self.url

    def _starting(self) -> None:
        self.view.start()

    def _stopped(self) -> None:
        self.view.stop()
