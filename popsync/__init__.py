"""popsync: popsync."""
