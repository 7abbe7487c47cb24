"""Running the mock NDXP: `NdxpServer` (uvicorn in a background thread), `serve()` and blocking `run()`.

With `NDXP_TLS_CERTFILE` and `NDXP_TLS_KEYFILE` set, both serve HTTPS (uvicorn's `ssl_certfile` and
`ssl_keyfile`); clients verify the certificate against their CA file (`STREAMS_NDXP_CA_FILE`).
"""

from __future__ import annotations

from fastapi import FastAPI

from mocks.common.threaded_server import MockServer, run_foreground
from mocks.ndxp.config import NdxpSettings, get_settings
from mocks.ndxp.exceptions import ServerStartError
from mocks.ndxp.logs import install_log_filters
from mocks.ndxp.main import create_app

__all__ = ["NdxpServer", "run", "serve"]


class NdxpServer(MockServer):
    """The NDXP app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before
    the thread runs (`https` when the settings turn TLS on). Use as a context manager or call
    `start()`/`stop()`; a server that does not come up raises `ServerStartError`. `faults` is the live
    fault injector: change `error_rate`/`latency_ms` while the server runs.
    """

    server_name = "NDXP server"
    start_error = ServerStartError

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
        app = app or create_app(self.settings)
        super().__init__(app, self.settings, host=host, port=port, startup_timeout=startup_timeout)

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
    # The package's own lines (a request ID per disclosure, rate limits, tokens) at the server's level.
    run_foreground(
        create_app(settings),
        settings,
        host=host,
        port=port,
        install_log_filters=install_log_filters,
        logger="mocks.ndxp",
    )
