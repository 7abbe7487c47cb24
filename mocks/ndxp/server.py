"""Running the mock NDXP: `NdxpServer` (uvicorn in a background thread), `serve()` and blocking `run()`.

With `NDXP_TLS_CERTFILE` and `NDXP_TLS_KEYFILE` set, both serve HTTPS (uvicorn's `ssl_certfile` and
`ssl_keyfile`); clients verify the certificate against their CA file (`STREAMS_NDXP_CA_FILE`).
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from fastapi import FastAPI

from mocks.common.threaded_server import ThreadedServer
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


class NdxpServer(ThreadedServer):
    """The NDXP app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before
    the thread runs (`https` when the settings turn TLS on). Use as a context manager or call
    `start()`/`stop()`; a server that does not come up raises `ServerStartError`.
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
        super().__init__(
            app or create_app(self.settings),
            name="NDXP server",
            error=ServerStartError,
            host=host,
            port=port,
            access_log=self.settings.access_log,
            log_level=self.settings.log_level,
            startup_timeout=startup_timeout,
            **_tls(self.settings),
        )

    @property
    def faults(self) -> FaultInjector:
        """The live fault injector: change `error_rate`/`latency_ms` while the server runs."""
        faults: FaultInjector = self.app.state.faults
        return faults

    def _starting(self) -> None:
        install_log_filters()


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
