"""Authorization requests (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636): checked in a fixed order. Pure.

Errors about the client or the redirect URI are shown to the citizen and never redirected (the URI is not
trusted yet); every later error is sent back to the client's redirect URI with its `state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from mocks.common.excerpts import excerpt
from mocks.vneid.config import RelyingParty
from mocks.vneid.exceptions import OidcError
from mocks.vneid.oidc.pkce import CHALLENGE_PATTERN

__all__ = ["LEVELS", "SCOPES", "AuthorizationRequest", "parse_authorization_request", "with_query"]

SCOPES = ("openid", "profile")
LEVELS = ("1", "2")  # the `acr` values: the account's level of assurance
# The parameters a log-in form carries over from GET /authorize to its POST.
OAUTH_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
    "code_challenge", "code_challenge_method", "acr_values", "prompt",
)  # fmt: skip


def with_query(url: str, params: Mapping[str, str | None]) -> str:
    """`url` with `params` (None values left out) added to its query, keeping the query it had."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query and extra else parts.query or extra
    return urlunsplit(parts._replace(query=query))


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked request: whom to send the code to, what it covers, and the PKCE challenge it binds."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    acr_values: tuple[str, ...] = ()

    def redirect(self, **params: str | None) -> str:
        """The redirect URI with `params` and this request's state."""
        return with_query(self.redirect_uri, {**params, "state": self.state})

    def form_fields(self) -> dict[str, str]:
        """The request as the hidden fields of a log-in form."""
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scope),
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "acr_values": " ".join(self.acr_values) or None,
        }
        return {k: v for k, v in fields.items() if v is not None}


def _client(params: Mapping[str, str], clients: Mapping[str, RelyingParty]) -> tuple[str, str]:
    client_id = params.get("client_id")
    if not client_id:
        raise OidcError("invalid_request", "client_id is missing", redirect=False)
    client = clients.get(client_id)
    if client is None:
        raise OidcError(
            "invalid_request", f"client_id {excerpt(client_id)!r} is not registered", redirect=False
        )
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise OidcError("invalid_request", "redirect_uri is missing (OIDC requires it)", redirect=False)
    if redirect_uri not in client.redirect_uris:
        raise OidcError(
            "invalid_request",
            f"redirect_uri {excerpt(redirect_uri)!r} is not registered for {client_id!r} "
            "(exact match required)",
            redirect=False,
        )
    return client_id, redirect_uri


def parse_authorization_request(
    params: Mapping[str, str], clients: Mapping[str, RelyingParty]
) -> AuthorizationRequest:
    """The request `params` make, or the first `OidcError` they contain (see the module docstring)."""
    client_id, redirect_uri = _client(params, clients)
    if params.get("response_type") != "code":
        raise OidcError(
            "unsupported_response_type", "only response_type=code (authorization code) is supported"
        )
    scope = tuple(dict.fromkeys(params.get("scope", "").split()))
    if "openid" not in scope:
        raise OidcError("invalid_scope", "scope must contain openid")
    challenge = params.get("code_challenge")
    if not challenge:
        raise OidcError(
            "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"
        )
    if params.get("code_challenge_method") != "S256":
        raise OidcError("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise OidcError("invalid_request", "code_challenge must be 43 base64url characters (S256)")
    if "none" in params.get("prompt", "").split():
        raise OidcError("login_required", "the citizen must log in with personal ID and passcode")
    return AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=tuple(s for s in scope if s in SCOPES),
        state=params.get("state") or None,
        nonce=params.get("nonce") or None,
        code_challenge=challenge,
        acr_values=tuple(v for v in params.get("acr_values", "").split() if v in LEVELS),
    )
