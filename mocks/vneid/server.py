"""Running the mock VNeID: `VneidServer` (uvicorn in a background thread) and blocking `run()`.

With `VNEID_TLS_CERTFILE` and `VNEID_TLS_KEYFILE` set, both serve HTTPS (uvicorn's `ssl_certfile` and
`ssl_keyfile`); clients verify the certificate against their CA file.
"""

from __future__ import annotations

from fastapi import FastAPI

from mocks.common.threaded_server import MockServer, run_foreground
from mocks.vneid.config import VneidSettings, get_settings
from mocks.vneid.exceptions import ServerStartError
from mocks.vneid.logs import LOGGER, install_log_filters
from mocks.vneid.main import create_app
from mocks.vneid.matching import CitizenLookup

__all__ = ["VneidServer", "run"]


class VneidServer(MockServer):
    """The VNeID app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before the
    thread runs (`https` when the settings turn TLS on); `base_url` is the issuer unless VNEID_ISSUER
    says otherwise. Use as a context manager
    or call `start()`/`stop()`; a server that does not come up raises `ServerStartError`. `faults` is
    the live log-in fault injector: change `error_rate`/`latency_ms` while the server runs.
    """

    server_name = "VNeID server"
    start_error = ServerStartError

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
        app = app or create_app(self.settings, citizens=citizens)
        super().__init__(app, self.settings, host=host, port=port, startup_timeout=startup_timeout)

    def _starting(self) -> None:
        install_log_filters()


def run(settings: VneidSettings | None = None, host: str = "127.0.0.1", port: int = 8700) -> None:
    """Serve in the foreground until interrupted (for `popsync vneid serve`)."""
    settings = settings or get_settings()
    # The package's own lines (tokens issued, rate limits with the request ID) at the server's level.
    run_foreground(
        create_app(settings),
        settings,
        host=host,
        port=port,
        install_log_filters=install_log_filters,
        logger=LOGGER,
    )
