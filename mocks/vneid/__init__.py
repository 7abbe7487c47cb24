"""popsync: mocks/vneid."""
