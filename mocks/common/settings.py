"""The agency-security part of a mock's settings, checked the same way on every mock: the OAuth client
registry (scopes known, auditors apart, no development or short secrets in production), the token
signing key, rate limits, and TLS. Pure: each check raises `ValueError` saying which variable to fix.

`AgencyMockSettings` is the base of a mock's settings class: the registry, rate limits and TLS it reads,
and `check_agency_security()` for its validator.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from mocks.common.agency import AUDIT_READ
from mocks.common.ratelimit import Rate
from mocks.common.security import MIN_SECRET_BYTES, OAuthClient, TokenService

__all__ = [
    "MIN_PRODUCTION_CLIENT_SECRET",
    "AgencyMockSettings",
    "check_clients",
    "check_tls",
    "client_rate",
    "token_service",
]

MIN_PRODUCTION_CLIENT_SECRET = 16


def check_clients(
    clients: Mapping[str, OAuthClient],
    *,
    known_scopes: Iterable[str],
    prefix: str,
    production: bool,
    dev_secrets: Iterable[str],
    token_secret: SecretStr | None,
    audited: str,
) -> None:
    """Refuse unknown scopes, an auditor holding `audited` scopes too, a short `<prefix>TOKEN_SECRET`
    and, in `production`, development or short client secrets and clients without a token secret."""
    known = frozenset(known_scopes)
    for agency, client in clients.items():
        unknown = sorted(set(client.scopes) - known)
        if unknown:
            raise ValueError(f"client {agency!r} has unknown scopes {unknown}; known: {sorted(known)}")
        if AUDIT_READ in client.scopes and len(client.scopes) > 1:
            # Separation of duties: whoever reads the audit must not be the one it is about.
            raise ValueError(
                f"client {agency!r} has {AUDIT_READ} and {audited} scopes; give the auditor its own client"
            )
    if token_secret is not None and len(token_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"{prefix}TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
    if not production:
        return
    dev = set(dev_secrets)
    weak = sorted(
        agency
        for agency, client in clients.items()
        if client.secret.get_secret_value() in dev
        or len(client.secret.get_secret_value()) < MIN_PRODUCTION_CLIENT_SECRET
    )
    if weak:
        raise ValueError(
            f"environment is 'production' but clients {weak} have built-in development or "
            f"short (< {MIN_PRODUCTION_CLIENT_SECRET} characters) secrets; set {prefix}CLIENTS"
        )
    if clients and token_secret is None:
        raise ValueError(
            f"environment is 'production': set {prefix}TOKEN_SECRET (at least "
            f"{MIN_SECRET_BYTES} random bytes) to sign access tokens"
        )


def check_tls(prefix: str, certfile: Path | None, keyfile: Path | None) -> None:
    """Both `<prefix>TLS_CERTFILE` and `<prefix>TLS_KEYFILE`, or neither; each a readable file."""
    if (certfile is None) != (keyfile is None):
        raise ValueError(f"set both {prefix}TLS_CERTFILE and {prefix}TLS_KEYFILE, or neither")
    for name, path in ((f"{prefix}TLS_CERTFILE", certfile), (f"{prefix}TLS_KEYFILE", keyfile)):
        if path is not None and not path.is_file():
            raise ValueError(f"{name} {str(path)!r} is not a readable file")


def client_rate(
    client: OAuthClient | None, default_per_s: float | None, default_burst: int | None
) -> Rate | None:
    """A client's rate limit: its own, else the default; burst defaults to one second's worth; None when
    unlimited."""
    per_s = client.rate_per_s if client and client.rate_per_s else default_per_s
    if per_s is None:
        return None
    burst = (client.burst if client else None) or default_burst or max(1, math.ceil(per_s))
    return Rate(per_s, burst)


def token_service(secret: SecretStr | None, *, audience: str, ttl_s: int) -> TokenService:
    """The access tokens of the mock `audience` (issuer and audience both), signed with `secret`.

    Without a secret (development only: production settings refuse it): a random key per process, so
    no known key can forge tokens (they stop verifying when the server restarts; clients fetch new ones).
    """
    key = secret.get_secret_value().encode() if secret else secrets.token_bytes(MIN_SECRET_BYTES)
    # No leeway: the same clock issues and verifies, so an expired token is refused to the second.
    return TokenService(key, issuer=audience, audience=audience, ttl_s=ttl_s, leeway_s=0)


class AgencyMockSettings(BaseSettings):
    """The base of a mock's settings: its subclass declares the fields below (each with its own
    description) and names its built-in `dev_clients`, its `known_scopes` and what an auditor must not
    also hold (`audited`, e.g. "citizen"); variables are named by the `env_prefix` of its config."""

    dev_clients: ClassVar[Mapping[str, OAuthClient]]
    known_scopes: ClassVar[Iterable[str]]
    audited: ClassVar[str]

    if TYPE_CHECKING:  # fields of the subclass
        environment: str
        clients: dict[str, OAuthClient] | None
        token_secret: SecretStr | None
        rate_limit_per_s: float | None
        rate_limit_burst: int | None
        tls_certfile: Path | None
        tls_keyfile: Path | None

    def check_agency_security(self) -> None:
        """`check_clients` on the registry, then `check_tls`; for the subclass's model validator."""
        prefix = str(self.model_config.get("env_prefix", ""))
        check_clients(
            self.oauth_clients,
            known_scopes=self.known_scopes,
            prefix=prefix,
            production=self.environment != "development",
            dev_secrets=[c.secret.get_secret_value() for c in self.dev_clients.values()],
            token_secret=self.token_secret,
            audited=self.audited,
        )
        check_tls(prefix, self.tls_certfile, self.tls_keyfile)

    @property
    def oauth_clients(self) -> dict[str, OAuthClient]:
        """The registered clients: `clients`, or the built-in ones in development when unset."""
        if self.clients is not None:
            return self.clients
        return dict(self.dev_clients) if self.environment == "development" else {}

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None

    def rate_of(self, agency: str) -> Rate | None:
        """The agency's rate limit: its client's own, else the default; None when unlimited."""
        return client_rate(self.oauth_clients.get(agency), self.rate_limit_per_s, self.rate_limit_burst)
