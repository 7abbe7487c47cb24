"""Running the mock VNeID: `VneidServer` (uvicorn in a background thread) and blocking `run()`.

With `VNEID_TLS_CERTFILE` and `VNEID_TLS_KEYFILE` set, both serve HTTPS (uvicorn's `ssl_certfile` and
`ssl_keyfile`); clients verify the certificate against their CA file.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from fastapi import FastAPI

from mocks.common.threaded_server import ThreadedServer
from mocks.ndxp.middleware import FaultInjector
from mocks.vneid.config import VneidSettings, get_settings
from mocks.vneid.exceptions import ServerStartError
from mocks.vneid.logs import LOGGER, install_log_filters
from mocks.vneid.main import create_app
from mocks.vneid.matching import CitizenLookup

__all__ = ["VneidServer", "run"]


def _tls(settings: VneidSettings) -> dict[str, Any]:
    """uvicorn's TLS options for the settings (none when TLS is off)."""
    if settings.tls_certfile is None or settings.tls_keyfile is None:
        return {}
    return {"ssl_certfile": str(settings.tls_certfile), "ssl_keyfile": str(settings.tls_keyfile)}


class VneidServer(ThreadedServer):
    """The VNeID app served by uvicorn on a background thread, for tests and in-process orchestration.

    Binding happens in `start()` (port 0: a free port chosen by the OS), so the URL is known before the
    thread runs (`https` when the settings turn TLS on); `base_url` is the issuer unless VNEID_ISSUER
    says otherwise. Use as a context manager
    or call `start()`/`stop()`; a server that does not come up raises `ServerStartError`.
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
        super().__init__(
            app or create_app(self.settings, citizens=citizens),
            name="VNeID server",
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
        """The live log-in fault injector: change `error_rate`/`latency_ms` while the server runs."""
        faults: FaultInjector = self.app.state.faults
        return faults

    def _starting(self) -> None:
        install_log_filters()


def run(settings: VneidSettings | None = None, host: str = "127.0.0.1", port: int = 8700) -> None:
    """Serve in the foreground until interrupted (for `popsync vneid serve`)."""
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
    # The package's own lines (tokens issued, rate limits with the request ID) at the server's level.
    logging.getLogger(LOGGER).setLevel(settings.log_level.upper())
    uvicorn.Server(config).run()
