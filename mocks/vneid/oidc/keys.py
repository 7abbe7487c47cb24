"""The RS256 key that signs ID tokens: from the settings (PEM) or generated at start; its public JWKS."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

__all__ = ["SigningKey"]


class SigningKey:
    """An RSA private key with its `kid` (the RFC 7638 thumbprint) that signs JWTs with RS256."""

    algorithm = "RS256"

    def __init__(self, key: RSAKey) -> None:
        if not key.is_private:
            raise ValueError("the signing key must be an RSA private key")
        self._key = key
        self.kid = key.thumbprint()

    @classmethod
    def generate(cls, size: int = 2048) -> SigningKey:
        """A fresh key: tokens it signed stop verifying when the server restarts (development only)."""
        return cls(RSAKey.generate_key(size, private=True))

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        """The key a PEM text holds (PKCS#1 or PKCS#8, unencrypted)."""
        try:
            key = RSAKey.import_key(pem)
        except Exception as exc:  # joserfc/cryptography raise several types for unreadable keys
            raise ValueError(
                f"VNEID_SIGNING_KEY is not an RSA private key in PEM: {type(exc).__name__}"
            ) from None
        return cls(key)

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """A compact JWS of `claims`, with `kid` in the header so clients pick the key from the JWKS."""
        return jwt.encode({"alg": self.algorithm, "typ": typ, "kid": self.kid}, claims, self._key)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (`/jwks`): the public half only, marked for signatures with RS256."""
        public = dict(self._key.as_dict(private=False))
        public.update({"use": "sig", "alg": self.algorithm, "kid": self.kid})
        return {"keys": [public]}
