"""Passcodes and activation codes: stored only as salted scrypt hashes, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_secret", "new_activation_code", "verify_secret"]

# Cost parameters of scrypt: about 8 MiB and some tens of milliseconds per hash, which slows guessing a
# 6-digit passcode without making every log-in (and the test suite) wait.
_N, _R, _P = 2**13, 8, 1
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: the code is read out to the citizen


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def hash_secret(secret: str) -> str:
    """`scrypt$n$r$p$salt$hash` of a passcode or activation code (a fresh salt each time)."""
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_scrypt(secret, salt, _N, _R, _P))}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """True when `secret` hashes to `stored`; False for no stored hash or an unreadable one."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def new_activation_code(length: int = 8) -> str:
    """A one-time code an officer hands the citizen (in reality sent by SMS) to activate the account."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
