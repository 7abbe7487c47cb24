"""Running the mock VNeID: `VneidServer` (uvicorn in a background thread) and blocking `run()`."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

import httpx
import uvicorn
from fastapi import FastAPI

from mocks.ndxp.middleware import FaultInjector
from mocks.vneid.config import VneidSettings, get_settings
from mocks.vneid.exceptions import ServerStartError
from mocks.vneid.logs import install_log_filters
from mocks.vneid.main import create_app
from mocks.vneid.matching import CitizenLookup

__all__ = ["VneidServer", "run"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class VneidServer:
    """The VNeID app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before the
    thread runs. Use as a context manager or call `start()`/`stop()`.
    """

    def __init__(
        self,
        settings: VneidSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        citizens: CitizenLookup | None = None,
        app: FastAPI | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.app = app or create_app(self.settings, citizens=citizens)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server (the issuer, unless VNEID_ISSUER says otherwise)."""
        if self._sock is None:
            raise ServerStartError("the VNeID server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def faults(self) -> FaultInjector:
        """The live log-in fault injector: change `error_rate`/`latency_ms` while the server runs."""
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
        )
        install_log_filters()
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="vneid-server", daemon=True)
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
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self._thread.is_alive():
                    cause = self.app.state.startup_error
                    raise ServerStartError(
                        f"the VNeID server stopped while starting: {cause or 'see its log'}"
                    ) from cause
                if self._server.started:
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                time.sleep(0.01)  # polling a condition: the thread gives no other signal
        raise ServerStartError(f"the VNeID server did not answer /health within {self.startup_timeout} s")

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

    def __enter__(self) -> VneidServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run(settings: VneidSettings | None = None, host: str = "127.0.0.1", port: int = 8700) -> None:
    """Serve in the foreground until interrupted (for `popsync vneid serve`)."""
    settings = settings or get_settings()
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        access_log=settings.access_log,
        log_level=settings.log_level,
    )
    install_log_filters()  # after uvicorn configured logging, so its loggers keep the mask
    uvicorn.Server(config).run()
