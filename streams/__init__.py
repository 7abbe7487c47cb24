"""popsync: streams."""
