"""The claims VNeID asserts about a citizen: pairwise subjects, ID token claims, userinfo claims. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from mocks.vneid.accounts import Account
from mocks.vneid.oidc.grants import CodeGrant

__all__ = ["at_hash", "id_token_claims", "pairwise_subject", "userinfo_claims"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def pairwise_subject(salt: bytes, sector: str, account_id: str) -> str:
    """The `sub` one sector (a client, or the agency behind several) sees for an account (OIDC Core §8.1).

    An HMAC of the sector and the internal account ID: stable for the sector, different across sectors,
    and neither the personal ID nor anything it could be computed back from.
    """
    return _b64(hmac.new(salt, f"{sector}\x00{account_id}".encode(), hashlib.sha256).digest())


def at_hash(access_token: str) -> str:
    """The left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6, for RS256)."""
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest()[:16])


def _level_claims(level: int) -> dict[str, str]:
    # `acr` is the standard claim; `loa` says the same for clients that look for the level by that name.
    return {"acr": str(level), "loa": str(level)}


def id_token_claims(
    *, issuer: str, subject: str, grant: CodeGrant, access_token: str, now: int, ttl: int
) -> dict[str, Any]:
    """The ID token's claims: who (`sub`), for whom (`aud`), how well proven (`acr`/`loa`), when."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": grant.client_id,
        "azp": grant.client_id,
        "iat": now,
        "exp": now + ttl,
        "auth_time": grant.auth_time,
        "amr": ["pwd"],
        "at_hash": at_hash(access_token),
        **_level_claims(grant.level),
    }
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    return claims


def userinfo_claims(subject: str, account: Account, scope: tuple[str, ...]) -> dict[str, Any]:
    """`/userinfo`: the subject and level; with scope `profile`, the name, birth date and gender the NPD
    confirmed at approval (never the personal ID)."""
    claims: dict[str, Any] = {"sub": subject, **_level_claims(account.level)}
    if "profile" in scope:
        claims.update(
            name=account.full_name, birthdate=account.date_of_birth.isoformat(), gender=account.gender
        )
    return claims
