"""The `popsync lag` command: each consumer group's lag and Burrow status, once or live until Ctrl-C."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from popsync.exceptions import PopsyncError
from popsync.lag import PartitionLag, Status, group_statuses
from popsync.lagwatch import LagMonitor, LagMonitorError

__all__ = ["STATUS_STYLE", "register", "render"]

STATUS_STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.STALL: "bold red",
    Status.STOP: "bold red",
    Status.REWIND: "magenta",
}

console = Console()


def register(app: typer.Typer) -> None:
    """Add the `lag` command to `app` (popsync's CLI)."""
    app.command("lag")(lag)


def lag(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", envvar="POPSYNC_BOOTSTRAP_SERVERS", help="host:port of a Kafka cluster"
        ),
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="a consumer group to watch (repeatable)")
    ] = None,
    group_prefix: Annotated[
        str | None, typer.Option(help="watch every group whose name starts with this, e.g. popsync-")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="seconds between polls")] = 2.0,
    window: Annotated[int, typer.Option(min=2, help="commits per partition that the status judges")] = 10,
    once: Annotated[
        bool, typer.Option("--once", help="poll WINDOW times INTERVAL apart, print the tables, exit")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="also serve the lag metrics to Prometheus on this port")
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            help="address the metrics listen on: 0.0.0.0 for a Prometheus in another container or host"
        ),
    ] = "127.0.0.1",
) -> None:
    """Consumer lag and status of consumer groups (all of a cluster's unless --group/--group-prefix).

    Each partition is judged the Burrow way over its last WINDOW commits:
    OK — no lag, or the lag shrinks;  WARN — offsets move but the lag never shrinks;
    STALL — the group holds the partition but its offset does not move;
    STOP — nobody has committed for longer than the window;  REWIND — the committed offset went backwards.
    "lag" counts messages; on popsync's record topics "records" counts the records they carry (an envelope
    holds up to 250), read once per message by the monitor.
    """
    if not bootstrap_servers:
        raise PopsyncError(
            "lag needs a running broker: pass --bootstrap-servers or set POPSYNC_BOOTSTRAP_SERVERS"
        )
    monitor = LagMonitor(
        bootstrap_servers, groups=group, group_prefix=group_prefix, window=window, interval_s=interval
    )
    server = None
    # The monitor says what failed; kafka-python's own retry lines would only tear the live view.
    kafka_log = logging.getLogger("kafka")
    kafka_level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        if metrics_port is not None:
            from prometheus_client import start_http_server

            try:
                server, _ = start_http_server(metrics_port, metrics_host, registry=monitor.registry)
            except OSError as exc:
                raise PopsyncError(
                    f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}; "
                    "choose another --metrics-port or --metrics-host"
                ) from exc
        rows = monitor.poll_once()  # fails fast when no broker answers
        if once:
            _once(monitor, rows)
        else:
            _live(monitor, rows)
    finally:
        monitor.stop()
        if server is not None:
            server.shutdown()
        kafka_log.setLevel(kafka_level)


def _once(monitor: LagMonitor, rows: list[PartitionLag]) -> None:
    # A group that commits its first offsets during the window (a worker still joining) is shown too:
    # only a window with nothing at all is an error.
    for _ in range(monitor.window - 1):
        time.sleep(monitor.interval_s)
        rows = monitor.poll_once()
    if not rows:
        raise PopsyncError(no_match(monitor))
    tables = render(rows, monitor)
    # Without a terminal (a pipe, a file, a log) nothing limits the width: print rows unfolded.
    out = console
    if not console.is_terminal:
        needed = Measurement.get(console, console.options.update_width(10_000), tables).maximum
        out = Console(width=max(console.width, needed))
    out.print(tables)


def _live(monitor: LagMonitor, rows: list[PartitionLag]) -> None:
    problem = None if rows else no_match(monitor)
    try:
        with Live(render(rows, monitor, problem), console=console, auto_refresh=False) as live:
            polled = time.monotonic()
            while True:
                time.sleep(max(monitor.interval_s - (time.monotonic() - polled), 0.0))
                polled = time.monotonic()
                try:
                    rows = monitor.poll_once()
                    problem = None if rows else no_match(monitor)
                except LagMonitorError as exc:  # the broker went away: say so, keep the last tables
                    rows, problem = monitor.snapshot(), str(exc)
                live.update(render(rows, monitor, problem), refresh=True)
    except KeyboardInterrupt:
        return


def no_match(monitor: LagMonitor) -> str:
    """Why there is nothing to show, naming what was asked for and what the cluster has."""
    where = monitor.bootstrap_servers
    if monitor.groups and monitor.group_prefix is None:
        return f"no consumer group named {', '.join(monitor.groups)} has committed offsets on {where}"
    wanted = "" if monitor.group_prefix is None else f"starting with {monitor.group_prefix!r} "
    listed = monitor.listed
    there = f"; groups there: {', '.join(listed[:10])}{' …' if len(listed) > 10 else ''}" if listed else ""
    return f"no consumer group {wanted}has committed offsets on {where}{there}"


def _count(n: int) -> str:
    return f"{n:,}"


def _seconds(s: float | None) -> str:
    return "—" if s is None else f"{s:,.1f}"


def render(rows: Sequence[PartitionLag], monitor: LagMonitor, problem: str | None = None) -> RenderableType:
    """A table per group (its title coloured by the group's status), a footer, and a problem if any."""
    parts: list[RenderableType] = []
    statuses = group_statuses(rows)
    for group, status in sorted(statuses.items()):
        title = Text.assemble((group, "bold"), "  ", (status.value, STATUS_STYLE[status]))
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("topic", overflow="fold")
        for name in ("partition", "committed", "end offset", "lag", "records", "behind (s)"):
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for r in rows:
            if r.group == group:
                table.add_row(
                    r.topic,
                    str(r.partition),
                    _count(r.committed),
                    _count(r.end),
                    _count(r.lag),
                    "—" if r.records is None else _count(r.records),
                    _seconds(r.seconds_behind),
                    Text(r.status.value, style=STATUS_STYLE[r.status]),
                )
        parts.append(table)
    if problem:
        parts.append(Text(problem, style="yellow"))
    parts.append(
        Text(
            f"{monitor.bootstrap_servers} · {datetime.now():%H:%M:%S} · window {monitor.window} commits, "
            f"poll every {monitor.interval_s:g} s",
            style="dim",
        )
    )
    return Group(*parts)
