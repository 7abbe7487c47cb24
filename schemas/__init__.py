"""popsync: schemas."""
