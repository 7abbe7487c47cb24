"""The agency-security part of a mock's settings, checked the same way on every mock: the OAuth client
registry (scopes known, auditors apart, no development or short secrets in production), the token
signing key, rate limits, and TLS. Pure: each check raises `ValueError` saying which variable to fix.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import SecretStr

from mocks.common.agency import AUDIT_READ
from mocks.common.ratelimit import Rate
from mocks.common.security import MIN_SECRET_BYTES, OAuthClient, TokenService

__all__ = [
    "MIN_PRODUCTION_CLIENT_SECRET",
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
