"""popsync: mocks/vneid, the mock national e-ID system (accounts, OIDC login, agency look-ups, events)."""
