"""One router per resource: accounts, the OIDC log-in, health."""
