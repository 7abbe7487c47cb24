"""The dashboard's web server: the page, `/api/state`, static files and `/health` on a uvicorn thread."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class DashboardServer:
    """`create_app(view)` served by uvicorn on a background thread; also starts and stops the view.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before the
    thread runs. Use as a context manager or call `start()`/`stop()`.
    """

    def __init__(
        self, view: RunView, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 30.0
    ) -> None:
        self.view = view
        self.app = create_app(view)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """`http://host:port/` of the running server."""
        if self._sock is None:
            raise ServiceError("the dashboard server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        """Start the view's sampling, bind, serve, wait until `/health` answers; returns the page's URL."""
        if self._thread is not None:
            return self.url
        try:
            self._sock = _bind(self.host, self.port)
        except OSError as exc:
            raise ServiceError(
                f"the dashboard cannot listen on {self.host}:{self.port}: {exc}; choose another --port"
            ) from exc
        self.port = self._sock.getsockname()[1]
        self.view.start()
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host process's logging configuration alone
            access_log=False,  # one poll a second per open page: not worth a log line each
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="popsync-dashboard", daemon=True)
        self._thread.start()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        # uvicorn calls sys.exit() when startup fails; _wait_healthy reports it instead.
        with contextlib.suppress(SystemExit):
            self._server.run(sockets=[self._sock])

    def _wait_healthy(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self._thread.is_alive():
                    raise ServiceError("the dashboard server stopped while starting; see the log above")
                if self._server.started:
                    try:
                        if client.get(f"{self.url}health").status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                time.sleep(0.01)  # polling a condition: the thread gives no other signal
        raise ServiceError(f"the dashboard server did not answer /health within {self.startup_timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit, wait for it, close the socket, stop the view. Safe to call twice."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
        self.view.stop()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
