"""PKCE (RFC 7636) with the S256 method only: the challenge a client sends, checked against its verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["CHALLENGE_PATTERN", "s256", "valid_verifier", "verify"]

# RFC 7636 §4.1: 43–128 unreserved characters; an S256 challenge is 43 base64url characters.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding: the challenge for `verifier`."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def verify(verifier: str, challenge: str) -> bool:
    """True when `verifier` is well formed and hashes to `challenge` (constant-time comparison)."""
    return valid_verifier(verifier) and hmac.compare_digest(s256(verifier), challenge)
