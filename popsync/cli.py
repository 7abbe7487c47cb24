"""The `popsync` command: simulate a scenario, or run each part alone (kafka, ndxp, worker, publish)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from popsync.exceptions import ExpectationFailed

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
kafka_app = typer.Typer(
    no_args_is_help=True, help="A local KRaft broker (or cluster: --brokers 3) for popsync."
)
ndxp_app = typer.Typer(no_args_is_help=True, help="The mock national exchange (NDXP) over the mock NPD.")
vneid_app = typer.Typer(no_args_is_help=True, help="The mock national e-ID system (VNeID).")
population_app = typer.Typer(no_args_is_help=True, help="Synthetic population files.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(ndxp_app, name="ndxp")
app.add_typer(vneid_app, name="vneid")
app.add_typer(population_app, name="population")

# soft_wrap: a report line pasted into a monthly report must stay one line, also in a file or a pipe.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers", envvar="POPSYNC_BOOTSTRAP_SERVERS", help="host:port of a Kafka cluster"
    ),
]


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    workers: Annotated[int, typer.Option(min=1, max=16, help="faust worker processes")] = 1,
    brokers: Annotated[
        int,
        typer.Option(min=1, max=9, help="brokers of the Kafka popsync starts (3: a local KRaft cluster)"),
    ] = 1,
    summary: Annotated[Path | None, typer.Option(help="write the summary JSON here")] = None,
    results: Annotated[Path | None, typer.Option(help="write one JSON line per record here")] = None,
    bootstrap_servers: Bootstrap = None,
    workdir: Annotated[Path | None, typer.Option(help="keep run files (NPD, logs) here")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every outcome")] = 3600.0,
    dashboard: Annotated[bool, typer.Option(help="serve the live dashboard while the run lasts")] = False,
    dashboard_port: Annotated[int, typer.Option(help="port of the dashboard (0: a free one)")] = 8700,
    report: Annotated[
        Path | None, typer.Option(help="write the Markdown report (as `popsync report` prints it) here")
    ] = None,
    lang: Annotated[str, typer.Option(help="language of the report: vi (the seeds') or en")] = "vi",
    npd_url: Annotated[
        str | None,
        typer.Option(
            envvar="POPSYNC_NPD_URL",
            help="the NPD's database, empty: postgresql://USER@HOST:PORT/DB (default: SQLite in the workdir)",
        ),
    ] = None,
) -> None:
    """Start everything the scenario needs, publish its records, wait for every outcome, report."""
    if lang not in ("vi", "en"):
        raise typer.BadParameter(f"{lang!r} is not one of vi, en", param_hint="'--lang'")
    from popsync.simulate import RunOptions
    from popsync.simulate import simulate as run

    options = RunOptions(
        workers=workers,
        bootstrap_servers=bootstrap_servers,
        summary=summary,
        results=results,
        workdir=workdir,
        keep_workdir=workdir is not None,
        timeout_s=timeout,
        dashboard_port=dashboard_port if dashboard else None,
        report=report,
        lang=lang,
        npd_url=npd_url,
        brokers=brokers,
    )
    run(scenario, options, console)


@kafka_app.command("up")
def kafka_up(
    port: Annotated[int | None, typer.Option(help="broker port (default: a free one)")] = None,
    brokers: Annotated[
        int, typer.Option(min=1, max=9, help="KRaft nodes (each broker and controller), on free ports")
    ] = 1,
) -> None:
    """Start a detached local broker (or cluster) and print its bootstrap servers."""
    from popsync.kafka_local import kafka_up as up

    if brokers > 1 and port is not None:
        raise typer.BadParameter("a cluster's nodes take free ports: leave --port out", param_hint="--port")
    state = up(port=port, brokers=brokers, log=lambda m: err.print(m, markup=False))
    pids = state.get("pid") or ", ".join(str(node["pid"]) for node in state.get("nodes", []))
    console.print(f"Kafka is up: [bold]{state['bootstrap_servers']}[/] (pid {pids})")
    console.print(f"export POPSYNC_BOOTSTRAP_SERVERS={state['bootstrap_servers']}")


@kafka_app.command("down")
def kafka_down() -> None:
    """Stop the detached local broker."""
    from popsync.kafka_local import kafka_down as down

    console.print("Kafka stopped." if down() else "No local broker was running.")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the detached local broker runs and answers."""
    from popsync.kafka_local import kafka_status as status

    state = status()
    if not state:
        console.print("No local broker is running.")
        raise typer.Exit(1)
    console.print(json.dumps(state, indent=2, default=str))


@ndxp_app.command("serve")
def ndxp_serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8600,
    population: Annotated[Path | None, typer.Option(help="load this population file first")] = None,
) -> None:
    """Serve the mock NDXP (settings from NDXP_* variables; see the README)."""
    from mocks.ndxp.config import NdxpSettings
    from mocks.ndxp.server import run

    settings = NdxpSettings()
    if population is not None:
        from mocks.ndxp.db import open_population

        db = open_population(settings.database_url)
        try:
            loaded = db.load_file(population)
        finally:
            db.close()
        err.print(f"loaded {loaded:,} citizens from {population}")
    run(settings, host=host, port=port)


@vneid_app.command("serve")
def vneid_serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8700,
) -> None:
    """Serve the mock VNeID: accounts, OIDC login, agency look-up (settings from VNEID_* variables)."""
    from mocks.vneid.config import get_settings
    from mocks.vneid.server import run

    run(get_settings(), host=host, port=port)


@app.command()
def worker(bootstrap_servers: Bootstrap = None) -> None:
    """Run one faust reconciliation worker (settings from STREAMS_* variables)."""
    from streams.config import StreamsSettings
    from streams.worker import run_worker

    settings = StreamsSettings()
    if bootstrap_servers:
        settings = settings.model_copy(update={"bootstrap_servers": bootstrap_servers})
    run_worker(settings)


@app.command()
def publish(
    files: Annotated[list[Path], typer.Argument(help="records files (JSON lines)")],
    bootstrap_servers: Bootstrap = None,
    topic_prefix: Annotated[str, typer.Option(envvar="STREAMS_TOPIC_PREFIX")] = "popsync",
    rate: Annotated[float | None, typer.Option(help="records per second")] = None,
    partitions: Annotated[
        int, typer.Option(envvar="STREAMS_PARTITIONS", min=1, help="partitions of topics created here")
    ] = 6,
) -> None:
    """Publish records files through an LGSP connector to a running deployment."""
    from connectors.lgsp import LgspConnector
    from popsync.exceptions import PopsyncError
    from streams.topics import TopicNames, ensure_topics

    if not bootstrap_servers:
        raise PopsyncError(
            "publish needs a running broker: pass --bootstrap-servers or set POPSYNC_BOOTSTRAP_SERVERS"
        )
    topics = TopicNames(topic_prefix)
    ensure_topics(bootstrap_servers, topics.all(), partitions)
    with LgspConnector(bootstrap_servers, topics, rate=rate) as connector:
        for path in files:
            report = connector.publish_file(path)
            console.print(
                f"{path}: published {report.published:,}, dead-lettered {report.rejected:,}", markup=False
            )


@population_app.command("generate")
def population_generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="population file to write")],
    province: Annotated[list[str], typer.Option(help="CODE=COUNT, repeatable, e.g. 008=1000")],
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write a deterministic synthetic population file."""
    from mocks.ndxp.population import generate_population, write_population
    from popsync.exceptions import PopsyncError

    counts: dict[str, int] = {}
    for item in province:
        code, _, count = item.partition("=")
        if not count.isdigit():
            raise PopsyncError(f"--province {item!r}: write CODE=COUNT, e.g. 008=1000")
        counts[code] = int(count)
    written = write_population(out, generate_population(seed, counts))
    console.print(f"wrote {written:,} citizens to {out}")


@population_app.command("load")
def population_load(
    file: Annotated[
        Path, typer.Argument(help="population file (JSON lines), e.g. from `population generate`")
    ],
) -> None:
    """Load a population file into the NPD that NDXP_DATABASE_URL names, without serving it.

    NDXP replicas over one database: load once (a job), then start them. A second load is refused."""
    from mocks.ndxp.config import NdxpSettings
    from mocks.ndxp.db import open_population

    db = open_population(NdxpSettings().database_url)
    try:
        loaded = db.load_file(file)
    finally:
        db.close()
    console.print(f"loaded {loaded:,} citizens from {file}")


@app.command()
def report(
    summaries: Annotated[
        list[Path],
        typer.Argument(
            metavar="SUMMARY.json", help="summary JSON files written by simulate; merged per province"
        ),
    ],
    markdown: Annotated[Path | None, typer.Option(help="also write the Markdown report to this file")] = None,
    # A plain str checked below, not the Lang enum: typer would need Lang imported at the top of this file.
    lang: Annotated[
        str, typer.Option(metavar="[vi|en]", help="vi: the seeds' Vietnamese; en: English")
    ] = "vi",
    lines: Annotated[
        bool, typer.Option("--lines", help="print simulate's one-line report lines instead of the Markdown")
    ] = False,
    provinces: Annotated[
        str | None,
        typer.Option(
            metavar="[legacy|current]",
            help="group by the 63 legacy provinces (as the records name them) or the 34 current ones "
            "(the merged provinces' figures added up); default: current when every summary is as of "
            "2025-07-01 or later (the scenario's as_of), legacy otherwise",
        ),
    ] = None,
) -> None:
    """Print the Markdown report of one or more summaries, per province and sector, in the seeds' style."""
    from popsync.report import Lang, ReportError, eid_report_line, load_summary, report_line
    from popsync.report_md import merge_summaries, render_markdown
    from popsync.report_provinces import province_names, regroup, summaries_map
    from schemas.provinces import ProvinceMap

    if lang not in tuple(Lang):
        raise typer.BadParameter(f"{lang!r} is not one of vi, en", param_hint="'--lang'")
    if provinces is not None and provinces not in tuple(ProvinceMap):
        raise typer.BadParameter(f"{provinces!r} is not one of legacy, current", param_hint="'--provinces'")
    # Reported here rather than by main(): every way in (a test's CliRunner too) gets one line and status 2.
    try:
        loaded = [(str(path), load_summary(path)) for path in summaries]
        by = ProvinceMap(provinces) if provinces else summaries_map(s for _, s in loaded)
        merged = regroup(merge_summaries(loaded), by)
        text = render_markdown(merged, Lang(lang), names=province_names(by))
        if markdown is not None:
            try:
                markdown.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ReportError(f"cannot write the report to {markdown}: {exc.strerror or exc}") from exc
    except ReportError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not lines:
        typer.echo(text, nl=False)
        return
    for total in merged.totals.values():
        console.print(report_line(total), highlight=False)
    for entry in merged.eid.values():
        console.print(eid_report_line(entry), highlight=False)


def _register_commands() -> None:
    from popsync.dashboard.cli import register as register_dashboard
    from popsync.lag_cli import register as register_lag

    register_dashboard(app)
    register_lag(app)


_register_commands()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Entry point: known errors become a message and an exit status, not a traceback."""
    from popsync.exceptions import PopsyncError
    from popsync.logsafe import configure_logging

    configure_logging()
    # SIGTERM (a supervisor, `timeout`, `kill`) stops a run the way Ctrl-C does: everything popsync
    # started is stopped on the way out instead of being left behind.
    signal.signal(signal.SIGTERM, _terminate)
    known: tuple[type[BaseException], ...] = (PopsyncError,)
    try:
        from connectors.exceptions import ConnectorError
        from mocks.ndxp.exceptions import NdxpError
        from streams.exceptions import StreamsError

        # KafkaLocalError is a PopsyncError already.
        known = (PopsyncError, ConnectorError, StreamsError, NdxpError)
    except ImportError:  # a part is missing from this install; still report popsync's own errors
        pass
    try:
        app()
    except ExpectationFailed as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        sys.exit(1)
    except known as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; everything popsync started has been stopped")
        sys.exit(130)


if __name__ == "__main__":
    main()
