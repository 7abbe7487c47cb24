"""Authorization codes and access tokens, held in memory: single-use codes bound to their PKCE challenge.

Memory is enough for a mock: a restart invalidates outstanding codes and tokens, which relying parties
must survive anyway (they log the citizen in again).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AccessGrant", "CodeGrant", "GrantStore"]


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """What a code stands for: the log-in it proves and the request it answers."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: tuple[str, ...]
    account_id: str
    level: int
    auth_time: int


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What an access token allows: reading this account's claims at /userinfo for this client."""

    client_id: str
    account_id: str
    scope: tuple[str, ...]
    level: int
    expires_at: float


class GrantStore:
    """Codes (single use, `code_ttl` seconds) and access tokens (`token_ttl`); thread-safe."""

    def __init__(self, code_ttl: float, token_ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[CodeGrant, float]] = {}
        self._redeemed: dict[str, tuple[str | None, float]] = {}  # code → access token it gave, expiry
        self._tokens: dict[str, AccessGrant] = {}

    def issue_code(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._purge()
            self._codes[code] = (grant, self.clock() + self.code_ttl)
        return code

    def redeem_code(self, code: str) -> CodeGrant | None:
        """The code's grant, once. A second redemption gets None and revokes the token of the first
        (RFC 6749 §4.1.2: a replayed code suggests it was stolen)."""
        with self._lock:
            self._purge()
            if code in self._redeemed:
                token, _ = self._redeemed[code]
                if token is not None:
                    self._tokens.pop(token, None)
                return None
            entry = self._codes.pop(code, None)
            if entry is None:
                return None
            grant, expires_at = entry
            self._redeemed[code] = (None, expires_at)
            return grant

    def issue_access_token(self, code: str, grant: CodeGrant) -> tuple[str, AccessGrant]:
        """A bearer token for a redeemed code's grant, remembered against the code for revocation."""
        token = secrets.token_urlsafe(32)
        access = AccessGrant(
            grant.client_id, grant.account_id, grant.scope, grant.level, self.clock() + self.token_ttl
        )
        with self._lock:
            self._tokens[token] = access
            if code in self._redeemed:
                self._redeemed[code] = (token, self._redeemed[code][1])
        return token, access

    def access(self, token: str) -> AccessGrant | None:
        """The grant of a live access token, or None (unknown, expired or revoked)."""
        with self._lock:
            grant = self._tokens.get(token)
            if grant is not None and grant.expires_at <= self.clock():
                del self._tokens[token]
                return None
            return grant

    def _purge(self) -> None:
        # Called under the lock on every issue/redeem: expired codes never pile up.
        now = self.clock()
        for store in (self._codes, self._redeemed):
            for key in [k for k, (_, expires_at) in store.items() if expires_at <= now]:
                del store[key]
