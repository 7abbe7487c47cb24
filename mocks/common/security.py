"""OAuth2 client credentials for the mocks: registered clients, scopes, signed short-lived access tokens.

Pure apart from the clock; no web framework. A mock's token endpoint calls `basic_credentials`,
`authenticate_client`, `grant_scopes` and `TokenService.issue`; its resource routes call
`bearer_token` and `TokenService.verify`. Every refusal is an `OAuthError` carrying the RFC's error
code, a description for the caller and the HTTP status to answer with:

OAuthError
    invalid_request, unsupported_grant_type, invalid_scope   400 at the token endpoint (RFC 6749 §5.2)
    invalid_client                                           401 at the token endpoint
    invalid_token                                            401 at a resource (RFC 6750 §3.1)
    insufficient_scope                                       403 at a resource

Access tokens are JWTs signed with HS256 under a server secret (the same service verifies them, so a
shared secret is enough and verifying costs microseconds on the hot path); claims: `iss`, `aud`,
`sub` (the client), `scope` (space-separated), `iat`, `exp`, `jti`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from mocks.common.excerpts import excerpt

__all__ = [
    "MIN_SECRET_BYTES",
    "AccessToken",
    "OAuthClient",
    "OAuthError",
    "TokenService",
    "authenticate_client",
    "basic_credentials",
    "bearer_token",
    "grant_scopes",
    "parse_scope",
    "www_authenticate",
]

MIN_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2)
_ALGORITHM = "HS256"


class OAuthError(Exception):
    """A refusal in OAuth2 terms: `error` code, human `description`, HTTP `status_code`."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code

    def challenge(self, scheme: str = "Bearer", realm: str = "ndxp") -> str:
        """A `WWW-Authenticate` value for this error (`www_authenticate`)."""
        return www_authenticate(scheme, realm=realm, error=self.error, description=self.description)


def _header_text(value: str, limit: int = 200) -> str:
    # NFKD, then accents dropped: "…" becomes "...", "ệ" an "e". Whatever else is not printable ASCII
    # becomes "?", and the quote and backslash a quoted-string cannot hold as they are (RFC 6750 §3) "'".
    kept = []
    for char in unicodedata.normalize("NFKD", value):
        if unicodedata.combining(char):
            continue
        kept.append("'" if char in '"\\' else char if " " <= char <= "~" else "?")
    text = "".join(kept)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def www_authenticate(
    scheme: str, *, realm: str, error: str | None = None, description: str | None = None
) -> str:
    """A `WWW-Authenticate` value: `scheme`, `realm` and, for a refusal, the RFC 6749 `error` code and
    its `description`, in printable ASCII whatever the description holds (a header travels as latin-1,
    and a character outside it made the answer a 500)."""
    value = f'{scheme} realm="{_header_text(realm)}"'
    if error is not None:
        value += f', error="{_header_text(error)}"'
    if description is not None:
        value += f', error_description="{_header_text(description)}"'
    return value


class OAuthClient(BaseModel):
    """A registered client: its secret, the scopes it may ask for, and optionally its own rate limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: SecretStr
    scopes: tuple[str, ...] = Field(min_length=1, description="scopes the client may be granted")
    rate_per_s: float | None = Field(default=None, gt=0, description="requests per second; None: default")
    burst: int | None = Field(default=None, ge=1, description="bucket size; None: the default burst")

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return parse_scope(value) if isinstance(value, str) else value

    @field_validator("secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("a client secret must not be empty")
        return value


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The verified claims of an access token."""

    subject: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int
    token_id: str

    @property
    def scope(self) -> str:
        return " ".join(sorted(self.scopes))


def parse_scope(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scopes from a space-separated string (RFC 6749 §3.3) or a list; duplicates dropped, order kept."""
    if value is None:
        return ()
    parts = value.split() if isinstance(value, str) else [s for item in value for s in item.split()]
    return tuple(dict.fromkeys(parts))


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of an `Authorization: Basic` header; None when the header is another scheme.

    RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "the Basic header is not base64 of client_id:secret", 401
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "the Basic header is not base64 of client_id:secret", 401)
    return unquote_plus(client_id), unquote_plus(secret)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def authenticate_client(clients: Mapping[str, OAuthClient], client_id: str, secret: str) -> OAuthClient:
    """The registered client `client_id` if `secret` is its secret; `invalid_client` otherwise.

    The secret is compared in constant time, and an unknown client costs the same comparison, so the
    timing tells neither which clients exist nor how much of a secret was right.
    """
    client = clients.get(client_id)
    expected = client.secret.get_secret_value() if client else "\x00unknown-client"
    matches = hmac.compare_digest(secret.encode(), expected.encode())
    if client is None or not matches:
        raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
    return client


def grant_scopes(client: OAuthClient, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes to grant: all the client's when none are asked for, else exactly those asked for."""
    if not requested:
        return client.scopes
    refused = [s for s in requested if s not in client.scopes]
    if refused:
        raise OAuthError(
            "invalid_scope",
            f"scopes {excerpt(' '.join(refused))} are not registered for this client "
            f"(it may ask for: {' '.join(client.scopes)})",
        )
    return requested


class TokenService:
    """Issues and verifies HS256 access tokens for one issuer and audience."""

    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str,
        audience: str,
        ttl_s: int,
        leeway_s: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token signing secret needs at least {MIN_SECRET_BYTES} bytes")
        self._key = OctKey.import_key(secret)
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self._clock = clock
        self._claims = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=leeway_s,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    def issue(self, subject: str, scopes: Iterable[str]) -> tuple[str, AccessToken]:
        """A signed token for `subject` with `scopes`, valid for `ttl_s` seconds from now."""
        now = int(self._clock())
        claims = AccessToken(subject, frozenset(scopes), now, now + self.ttl_s, uuid.uuid4().hex)
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "scope": claims.scope,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": claims.token_id,
        }
        return jwt.encode({"alg": _ALGORITHM, "typ": "at+jwt"}, payload, self._key), claims

    def verify(self, token: str) -> AccessToken:
        """The claims of a token this service signed and that has not expired; `invalid_token` otherwise."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            expired = exc.error == "expired_token"
            reason = "the access token expired" if expired else "the access token is not valid"
            raise OAuthError("invalid_token", f"{reason}; get a new one at /oauth/token", 401) from None
        except ValueError:  # joserfc raises this for a token that is not three base64url parts
            raise OAuthError("invalid_token", "the access token is not a JWT", 401) from None
        claims = decoded.claims
        return AccessToken(
            subject=str(claims["sub"]),
            scopes=frozenset(parse_scope(str(claims.get("scope", "")))),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            token_id=str(claims.get("jti", "")),
        )
