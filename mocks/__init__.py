"""popsync: mocks."""
