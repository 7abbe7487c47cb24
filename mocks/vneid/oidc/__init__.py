"""The citizen log-in as an OpenID Connect provider: authorization code flow with PKCE (S256)."""
