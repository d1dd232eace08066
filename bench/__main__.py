"""`python -m bench …`: every benchmark behind one entry point (never part of the product)."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bench.results import publish
from infra.logs import configure_logging
from infra.settings import Settings

app = typer.Typer(help="rectrack's benchmarks; figures and machine in BENCHMARKS.md.")
Out = Annotated[Path | None, typer.Option("-o", "--out", help="Also write the JSON here.")]


@app.callback()
def quiet_logs() -> None:
    """Logs go to stderr at warning level: stdout carries the result alone."""
    configure_logging("warning")


@app.command()
def generate(
    events: Annotated[int, typer.Option(help="How many commands (each gives one event).")],
    seed: Annotated[int, typer.Option(help="Same seed, same history.")] = 1,
    out: Out = None,
) -> None:
    """Write a synthetic, valid, deterministic history as NDJSON commands."""
    from bench.generate import commands

    with out.open("wb") if out else sys.stdout.buffer as sink:
        for line in commands(events, seed):
            sink.write(line + b"\n")


@app.command()
def run(
    events: Annotated[int, typer.Option(help="Size of the synthetic history.")] = 10_000,
    seed: Annotated[int, typer.Option()] = 1,
    query_seconds: Annotated[
        float, typer.Option(help="How long queries are timed, at idle and again under ingest.")
    ] = 20,
    ingest_rate: Annotated[
        float, typer.Option(help="Commands/s sent while the queries are timed under ingest.")
    ] = 200,
    out: Out = None,
) -> None:
    """Decider vs raw, replay vs raw, then queries while ingest runs, and peak memory."""
    from bench.run import run as run_bench

    result = run_bench(events, seed, query_seconds=query_seconds, ingest_rate=ingest_rate)
    publish(asyncio.run(result), out)


@app.command()
def recover(
    events: Annotated[int, typer.Option(help="Size of the synthetic history.")] = 100_000,
    seed: Annotated[int, typer.Option()] = 1,
    out: Out = None,
) -> None:
    """Time to recover from a lost PostgreSQL: a new cluster, read models rebuilt from the log."""
    from bench.recover import run as run_recover

    publish(asyncio.run(run_recover(events, seed)), out)


@app.command()
def freshness(
    rate: Annotated[float, typer.Option(help="Commands/s sent while timing.")] = 500,
    seconds: Annotated[float, typer.Option(help="How long to send.")] = 20,
    out: Out = None,
) -> None:
    """From a command's acceptance to its row in the read model, idle and under load."""
    from bench.freshness import run as run_freshness

    publish(asyncio.run(run_freshness(rate, seconds)), out)


@app.command("report-as-of")
def report_as_of(
    recommendations: Annotated[int, typer.Option(help="Size of the synthetic read model.")] = (
        100_000
    ),
    runs: Annotated[int, typer.Option(help="Timed runs.")] = 7,
    out: Out = None,
) -> None:
    """The as-of report over a synthetic read model."""
    from bench.report_as_of import run as run_report

    publish(asyncio.run(run_report(recommendations, runs)), out)


@app.command()
def peer(
    events: Annotated[int, typer.Option(help="Size of the synthetic history.")] = 10_000,
    seed: Annotated[int, typer.Option()] = 1,
    batch: Annotated[int, typer.Option(help="Events per insert and per page.")] = 500,
) -> None:
    """The same history through the eventsourcing library's PostgreSQL recorder and a view."""
    from bench.peer_eventsourcing import run as run_peer

    url = Settings.from_env().database_url
    result = asyncio.run(run_peer(events, seed, url, batch))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


@app.command()
def summary(files: Annotated[list[Path], typer.Argument(help="Result files of `run`.")]) -> None:
    """The tables of BENCHMARKS.md for the given result files."""
    from bench.summary import summary as render_summary

    sys.stdout.write(render_summary([json.loads(f.read_text()) for f in files]))


app()
