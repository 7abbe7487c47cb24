"""popsync: mocks/ndxp."""
