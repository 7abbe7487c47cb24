"""Running the mock NDXP: `NdxpServer` (uvicorn in a background thread), `serve()` and blocking `run()`.

With `NDXP_TLS_CERTFILE` and `NDXP_TLS_KEYFILE` set, both serve HTTPS (uvicorn's `ssl_certfile` and
`ssl_keyfile`); clients verify the certificate against their CA file (`STREAMS_NDXP_CA_FILE`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from mocks.ndxp.config import NdxpSettings, get_settings
from mocks.ndxp.exceptions import ServerStartError
from mocks.ndxp.logs import install_log_filters
from mocks.ndxp.main import create_app
from mocks.ndxp.middleware import FaultInjector

__all__ = ["NdxpServer", "run", "serve"]


def _tls(settings: NdxpSettings) -> dict[str, Any]:
    """uvicorn's TLS options for the settings (none when TLS is off)."""
    if settings.tls_certfile is None or settings.tls_keyfile is None:
        return {}
    return {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class NdxpServer:
    """The NDXP app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before
    the thread runs. Use as a context manager or call `start()`/`stop()`.
    """

    def __init__(
        self,
        settings: NdxpSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app: FastAPI | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.app = app or create_app(self.settings)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server."""
        if self._sock is None:
            raise ServerStartError("the NDXP server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{self.port}"

    @property
    def faults(self) -> FaultInjector:
        """The live fault injector: change `error_rate`/`latency_ms` while the server runs."""
        faults: FaultInjector = self.app.state.faults
        return faults

    def start(self) -> str:
        """Bind, start serving, wait until `/health` answers; returns the base URL."""
        if self._thread is not None:
            return self.base_url
        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host process's logging configuration alone
            access_log=self.settings.access_log,
            log_level=self.settings.log_level,
            timeout_graceful_shutdown=5,
            **_tls(self.settings),
        )
        install_log_filters()
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="ndxp-server", daemon=True)
        self._thread.start()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        # uvicorn calls sys.exit() when startup fails; _wait_healthy reports the cause instead.
        with contextlib.suppress(SystemExit):
            self._server.run(sockets=[self._sock])

    def _wait_healthy(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        # Only "is our own thread serving yet": nothing is sent, so the certificate needs no checking here.
        with httpx.Client(timeout=2.0, verify=False) as client:  # noqa: S501
            while time.monotonic() < deadline:
                if not self._thread.is_alive():
                    cause = self.app.state.startup_error
                    raise ServerStartError(
                        f"the NDXP server stopped while starting: {cause or 'see its log'}"
                    ) from cause
                if self._server.started:
                    try:
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                time.sleep(0.01)  # polling a condition: the thread gives no other signal
        raise ServerStartError(f"the NDXP server did not answer /health within {self.startup_timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit, wait for the thread, close the socket. Safe to call twice."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = None

    def __enter__(self) -> NdxpServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(settings: NdxpSettings | None = None, host: str = "127.0.0.1", port: int = 0) -> NdxpServer:
    """Start an `NdxpServer` in the background and return it (its `base_url` is ready)."""
    server = NdxpServer(settings, host=host, port=port)
    server.start()
    return server


def run(settings: NdxpSettings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve in the foreground until interrupted (for `popsync ndxp serve`)."""
    settings = settings or get_settings()
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        access_log=settings.access_log,
        log_level=settings.log_level,
        **_tls(settings),
    )
    install_log_filters()  # after uvicorn configured logging, so its loggers keep the mask
    # The package's own lines (a request ID per disclosure, rate limits, tokens) at the server's level.
    logging.getLogger("mocks.ndxp").setLevel(settings.log_level.upper())
    uvicorn.Server(config).run()
