"""`ThreadedServer`: a FastAPI app served by uvicorn on a background thread, for tests and in-process use.

The mock NDXP, the mock VNeID and popsync's dashboard each subclass it; they choose the name in
messages, the uvicorn options and the exception raised when the server does not come up. The two mocks
do so through `MockServer`, which takes the uvicorn options from the mock's settings (`ServedSettings`),
and serve in the foreground with `run_foreground`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import httpx
import uvicorn
from fastapi import FastAPI

if TYPE_CHECKING:
    from mocks.ndxp.middleware import FaultInjector

__all__ = ["MockServer", "ServedSettings", "ThreadedServer", "run_foreground", "tls_options"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class ThreadedServer:
    """`app` served by uvicorn on a daemon thread; `start()` returns once `/health` answers 200.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before
    the thread runs. Use as a context manager or call `start()`/`stop()`.

    `name` ("NDXP server") is said in messages and, lower-cased with dashes, names the thread unless
    `thread_name` does. A failed start raises `error(message)`; when the app's lifespan stored the cause
    in `app.state.startup_error`, the message carries it. `bind_hint` set, a port that cannot be bound
    raises `error` with the hint too, else the `OSError` itself. Subclasses may override `_starting()`
    (bound, about to serve) and `_stopped()` (end of every `stop()`).
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        name: str,
        error: Callable[[str], Exception],
        host: str = "127.0.0.1",
        port: int = 0,
        thread_name: str | None = None,
        access_log: bool = True,
        log_level: str | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        graceful_shutdown_s: int = 5,
        startup_timeout: float = 30.0,
        bind_hint: str | None = None,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._error = error
        self._thread_name = thread_name or name.lower().replace(" ", "-")
        self._bind_hint = bind_hint
        self._access_log = access_log
        self._log_level = log_level
        self._ssl_certfile = ssl_certfile
        self._ssl_keyfile = ssl_keyfile
        self._graceful_shutdown_s = graceful_shutdown_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """`http(s)://host:port` of the running server."""
        if self._sock is None:
            raise self._error(f"the {self.name} is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._ssl_certfile else 'http'}://{host}:{self.port}"

    def start(self) -> str:
        """Bind, start serving, wait until `/health` answers; returns the base URL."""
        if self._thread is not None:
            return self.base_url
        try:
            self._sock = _bind(self.host, self.port)
        except OSError as exc:
            if self._bind_hint is None:
                raise
            raise self._error(
                f"the {self.name} cannot listen on {self.host}:{self.port}: {exc}; {self._bind_hint}"
            ) from exc
        self.port = self._sock.getsockname()[1]
        try:
            config = uvicorn.Config(
                self.app,
                log_config=None,  # leave the host process's logging configuration alone
                access_log=self._access_log,
                log_level=self._log_level,
                ssl_certfile=self._ssl_certfile,
                ssl_keyfile=self._ssl_keyfile,
                timeout_graceful_shutdown=self._graceful_shutdown_s,
            )
            self._starting()
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._serve, name=self._thread_name, daemon=True)
            self._thread.start()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _starting(self) -> None:
        """Called by `start()` once the socket is bound, before the thread serves; nothing here."""

    def _stopped(self) -> None:
        """Called at the end of every `stop()`; nothing here."""

    def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        # uvicorn calls sys.exit() when startup fails; _wait_healthy reports the cause instead.
        with contextlib.suppress(SystemExit):
            self._server.run(sockets=[self._sock])

    def _wait_healthy(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        # Only "is our own thread serving yet": nothing is sent, so a certificate needs no checking here.
        with httpx.Client(timeout=2.0, verify=False) as client:  # noqa: S501
            while time.monotonic() < deadline:
                if not self._thread.is_alive():
                    cause = getattr(self.app.state, "startup_error", None)
                    raise self._error(
                        f"the {self.name} stopped while starting: {cause or 'see its log'}"
                    ) from cause
                if self._server.started:
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"{self.base_url}/health").status_code == 200:
                            return
                time.sleep(0.01)  # polling a condition: the thread gives no other signal
        raise self._error(f"the {self.name} did not answer /health within {self.startup_timeout} s")

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
        self._server = self._thread = self._sock = None
        self._stopped()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServedSettings(Protocol):
    """What serving a mock needs of its settings."""

    @property
    def tls_certfile(self) -> Path | None: ...

    @property
    def tls_keyfile(self) -> Path | None: ...

    @property
    def access_log(self) -> bool: ...

    @property
    def log_level(self) -> str: ...


def tls_options(settings: ServedSettings) -> dict[str, Any]:
    """uvicorn's TLS options for the settings (none when TLS is off)."""
    if settings.tls_certfile is None or settings.tls_keyfile is None:
        return {}
    return {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}


class MockServer(ThreadedServer):
    """A mock's app on a background thread, with its settings' access log, log level and TLS (`https` when
    the settings turn TLS on). A subclass names itself (`server_name`), the exception of a failed start
    (`start_error`) and may install its log filters in `_starting()`."""

    server_name: ClassVar[str]
    start_error: ClassVar[type[Exception]]

    def __init__(
        self,
        app: FastAPI,
        settings: ServedSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            app,
            name=self.server_name,
            error=self.start_error,
            host=host,
            port=port,
            access_log=settings.access_log,
            log_level=settings.log_level,
            startup_timeout=startup_timeout,
            **tls_options(settings),
        )

    @property
    def faults(self) -> FaultInjector:
        """The live fault injector (of `/v1`, or of the log-in endpoints): change `error_rate`/`latency_ms`
        while the server runs."""
        faults: FaultInjector = self.app.state.faults
        return faults


def run_foreground(
    app: FastAPI,
    settings: ServedSettings,
    *,
    host: str,
    port: int,
    install_log_filters: Callable[[], None],
    logger: str,
) -> None:
    """Serve `app` in the foreground until interrupted; `logger` (the mock's package logger) logs at the
    settings' level."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=settings.access_log,
        log_level=settings.log_level,
        **tls_options(settings),
    )
    install_log_filters()  # after uvicorn configured logging, so its loggers keep the mask
    logging.getLogger(logger).setLevel(settings.log_level.upper())
    uvicorn.Server(config).run()
