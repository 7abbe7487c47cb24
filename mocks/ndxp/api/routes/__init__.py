"""One router per resource: citizens, legacy IDs, audit, health."""
