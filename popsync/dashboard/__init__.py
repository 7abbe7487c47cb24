"""A live web dashboard of a run: per-source progress in the seeds' figures, throughput, lag, consumers.

`RunView` (state.py) samples a results collector once a second into a JSON-able snapshot;
`DashboardServer` (server.py) serves that snapshot and a plain HTML/JS page from a background thread;
`register` (cli.py) adds the standalone `popsync dashboard` command.
"""

from __future__ import annotations

from popsync.dashboard.server import DashboardServer, create_app
from popsync.dashboard.state import RunView

__all__ = ["DashboardServer", "RunView", "create_app"]
