"""popsync: connectors."""
