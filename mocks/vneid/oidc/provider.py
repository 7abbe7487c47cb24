"""The OpenID provider: discovery, the log-in behind /authorize, the code exchange at /token, /userinfo.

Blocking (passcode hashing, SQLite): the routes run these methods in the thread pool.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from mocks.common.excerpts import excerpt
from mocks.vneid.config import VneidSettings
from mocks.vneid.exceptions import OidcError
from mocks.vneid.oidc import pkce
from mocks.vneid.oidc.grants import CodeGrant, GrantStore
from mocks.vneid.oidc.keys import SigningKey
from mocks.vneid.oidc.requests import LEVELS, SCOPES, AuthorizationRequest, parse_authorization_request
from mocks.vneid.oidc.tokens import id_token_claims, pairwise_subject, userinfo_claims
from mocks.vneid.service import AccountService

__all__ = ["OidcProvider"]

_CLAIMS = (
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "loa", "amr",
    "name", "birthdate", "gender",
)  # fmt: skip


def _client_error(description: str) -> OidcError:
    return OidcError("invalid_client", description, status_code=401)


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of an `Authorization: Basic` header (RFC 6749 §2.3.1: form-encoded parts)."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _client_error("the Basic authorization header is not base64 of client_id:secret") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _client_error("the Basic authorization header is not base64 of client_id:secret")
    return unquote(client_id), unquote(secret)


class OidcProvider:
    """Issues codes to logged-in citizens and ID tokens to the registered relying parties."""

    def __init__(
        self,
        settings: VneidSettings,
        service: AccountService,
        key: SigningKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.service = service
        self.key = key
        self.clock = clock
        self.grants = GrantStore(settings.code_ttl_s, settings.token_ttl_s, clock)
        self._salt = settings.subject_salt.get_secret_value().encode()

    def discovery(self, issuer: str) -> dict[str, Any]:
        """The OpenID Provider Metadata (OIDC Discovery §3) of this provider at `issuer`."""
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [self.key.algorithm],
            "scopes_supported": list(SCOPES),
            "claims_supported": list(_CLAIMS),
            "acr_values_supported": list(LEVELS),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
        }

    def check_request(self, params: Mapping[str, str]) -> AuthorizationRequest:
        return parse_authorization_request(params, self.settings.relying_parties)

    def login(self, request: AuthorizationRequest, personal_id: str, passcode: str) -> str:
        """The redirect carrying a code for the citizen whose passcode this is; `OidcError` if none."""
        account = self.service.authenticate(personal_id, passcode)
        if request.acr_values and str(account.level) not in request.acr_values:
            raise OidcError(
                "unmet_authentication_requirements",
                f"the relying party asks for level {'/'.join(request.acr_values)}; this account is level "
                f"{account.level} (a level-2 account needs in-person verification by the police)",
            )
        grant = CodeGrant(
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            scope=request.scope,
            account_id=account.account_id,
            level=account.level,
            auth_time=int(self.clock()),
        )
        return request.redirect(code=self.grants.issue_code(grant))

    def _authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> str:
        basic = _basic(authorization)
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
        client = self.settings.relying_parties.get(client_id)
        if client is None:
            raise _client_error(
                f"client_id {excerpt(client_id)!r} is not registered" if client_id else "client_id is missing"
            )
        if client.client_secret is None:
            if secret:
                raise _client_error("this client is public (PKCE only); send no client secret")
        elif not secret or not hmac.compare_digest(secret, client.client_secret.get_secret_value()):
            raise _client_error("wrong or missing client secret (client_secret_basic or client_secret_post)")
        return client_id

    def token(self, form: Mapping[str, str], authorization: str | None, issuer: str) -> dict[str, Any]:
        """Exchange a code and its PKCE verifier for an ID token and an access token (RFC 6749 §4.1.3)."""
        if form.get("grant_type") != "authorization_code":
            raise OidcError("unsupported_grant_type", "only grant_type=authorization_code is supported")
        client_id = self._authenticate_client(form, authorization)
        code, verifier = form.get("code"), form.get("code_verifier")
        if not code:
            raise OidcError("invalid_request", "code is missing")
        if not verifier:
            raise OidcError("invalid_request", "code_verifier is missing; PKCE (S256) is required")
        grant = self.grants.redeem_code(code)
        if grant is None:
            raise OidcError("invalid_grant", "the code is unknown, expired or already used; log in again")
        if grant.client_id != client_id:
            raise OidcError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OidcError("invalid_grant", "redirect_uri differs from the one of the authorization request")
        if not pkce.verify(verifier, grant.code_challenge):
            raise OidcError("invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
        account = self.service.still_active(grant.account_id)
        if account is None:
            raise OidcError("invalid_grant", "the account was locked after the log-in; log in again")
        access_token, _ = self.grants.issue_access_token(code, grant)
        ttl = int(self.settings.token_ttl_s)
        claims = id_token_claims(
            issuer=issuer,
            subject=self._subject(client_id, account.account_id),
            grant=grant,
            access_token=access_token,
            now=int(self.clock()),
            ttl=ttl,
        )
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(grant.scope),
            "id_token": self.key.sign(claims),
        }

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        """The claims an access token (`Authorization: Bearer …`) may read (OIDC Core §5.3)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise OidcError(
                "invalid_request", "send the access token as Authorization: Bearer <token>", status_code=401
            )
        grant = self.grants.access(token.strip())
        account = self.service.still_active(grant.account_id) if grant else None
        if grant is None or account is None:
            raise OidcError(
                "invalid_token", "the access token is unknown, expired or revoked", status_code=401
            )
        return userinfo_claims(self._subject(grant.client_id, account.account_id), account, grant.scope)

    def _subject(self, client_id: str, account_id: str) -> str:
        sector = self.settings.relying_parties[client_id].sector or client_id
        return pairwise_subject(self._salt, sector, account_id)
