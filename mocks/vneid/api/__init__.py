"""The VNeID HTTP API: the versioned account routes and the OIDC endpoints."""
