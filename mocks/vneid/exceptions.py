"""Errors of the mock VNeID, under one root.

VneidError
├── AccountError                 an account operation cannot be done (the API answers 4xx)
│   ├── AccountNotFoundError     no account for this personal ID                       → 404
│   ├── AccountExistsError       the citizen already has an account                    → 409
│   ├── IllegalTransitionError   the account's status does not allow the change         → 409
│   ├── ActivationCodeError      the activation code is not the one given at approval  → 403
│   └── MatchError               the application's data disagree with the NPD          → 422
├── PopulationUnavailableError   no population database to match applications against  → 503
├── OidcError                    an OIDC/OAuth 2.0 protocol error (RFC 6749 error code)
└── ServerStartError             the background server did not come up
"""

from __future__ import annotations

__all__ = [
    "AccountError",
    "AccountExistsError",
    "AccountNotFoundError",
    "ActivationCodeError",
    "IllegalTransitionError",
    "MatchError",
    "OidcError",
    "PopulationUnavailableError",
    "ServerStartError",
    "VneidError",
]


class VneidError(Exception):
    """Root of every error the mock VNeID raises on purpose."""


class AccountError(VneidError):
    """An account operation that cannot be done; `status_code` is the HTTP status the API answers."""

    status_code = 400


class AccountNotFoundError(AccountError):
    """No e-ID account exists for the personal ID."""

    status_code = 404


class AccountExistsError(AccountError):
    """The citizen already has an e-ID account (one per personal ID)."""

    status_code = 409


class IllegalTransitionError(AccountError):
    """The account's current status does not allow the requested change."""

    status_code = 409


class ActivationCodeError(AccountError):
    """The activation code is not the one handed out when the account was approved."""

    status_code = 403


class MatchError(AccountError):
    """The application's data do not match the NPD; `fields` names what differs (or why none could)."""

    status_code = 422

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class PopulationUnavailableError(VneidError):
    """The service has no population database to match applications against."""

    status_code = 503


class OidcError(VneidError):
    """An OAuth 2.0 / OIDC error: `error` is the RFC 6749 code, `description` says what to fix.

    `redirect` tells whether it may be sent to the client's redirect URI (it may not while the client
    or the redirect URI itself is in doubt, RFC 6749 §4.1.2.1).
    """

    def __init__(
        self, error: str, description: str, *, status_code: int = 400, redirect: bool = True
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code
        self.redirect = redirect


class ServerStartError(VneidError):
    """The VNeID server thread did not answer /health in time, or stopped while starting."""
