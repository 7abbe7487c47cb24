"""Security pieces the mocks share (the NDXP now, VNeID later): OAuth2 clients and tokens, rate limits."""
