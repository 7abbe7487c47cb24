"""The NDXP HTTP API: routers per resource under `api/routes/`, gathered in `api/main.py`."""
