"""The log's data: load commands, the demo, replay the read models, verify the log."""

import asyncio
import dataclasses
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, get_args

import orjson
import typer
from pydantic import ValidationError
from rich.table import Table

from events.envelope import Actor
from events.types import Role
from infra.kafka_clients import ensure_topics
from projections.documents import DocumentProblem, DocumentReport
from services.cli.output import cli_user, console, err, fail, load_settings, write_json
from services.cli.reports import ReportFormat, print_report, read_report
from services.cli.stack import up
from services.decider.loader import load_file

DEMO_AS_OF = date(2024, 9, 18)


def demo_file() -> Path:
    """The bundled dataset built from the public record."""
    return Path(str(resources.files("services").joinpath("demo", "public_record.ndjson")))


def load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for outcomes.")] = 60.0,
    loaded_by: Annotated[
        str | None, typer.Option(help="Who loads the file (recorded in each event).")
    ] = None,
    loader_team: Annotated[str, typer.Option(help="The loader's team.")] = "cli",
    loader_role: Annotated[str, typer.Option(help="The loader's role; loading needs admin.")] = (
        "admin"
    ),
) -> None:
    """Send one command per line of FILE (NDJSON) and summarise the outcomes."""
    loader = _loader(loaded_by, loader_team, loader_role)
    # The gateway connects as the API's principal: it writes commands and reads outcomes only.
    settings = load_settings().for_component("api")
    # Nothing is sent to a topic weaker than the settings ask (TopicCheckError names it).
    t = settings.topics
    asyncio.run(ensure_topics(settings, (t.commands, t.outcomes), create=False))
    summary = load_file(
        settings,
        file,
        loaded_by=loader,
        timeout=timeout,
        quiet=as_json,
    )
    _print_load_summary(summary, as_json)
    if summary["no_outcome"]:
        raise typer.Exit(2)


def _loader(name: str | None, team: str, role: str) -> Actor:
    roles = get_args(Role)
    if role not in roles:
        raise fail(f"--loader-role: no role {role!r}; the roles are {', '.join(roles)}")
    try:
        return Actor.model_validate({"name": name or cli_user(), "team": team, "role": role})
    except ValidationError as exc:
        option = {"name": "--loaded-by", "team": "--loader-team", "role": "--loader-role"}
        raise fail(
            "; ".join(
                f"{option.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
            )
        ) from None


def _print_load_summary(summary: dict[str, object], as_json: bool) -> None:
    if as_json:
        write_json(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return
    console.print(
        f"{summary['commands']} commands: {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected, {summary['no_outcome']} without an outcome"
    )
    rejections = summary["rejections"]
    assert isinstance(rejections, list)
    for r in rejections[:50]:
        console.print(f"  line {r['line']}: {r['reason']} — {r['detail']}")


def demo() -> None:
    """Start the stack, load the public-record dataset, print the 18 September 2024 table."""
    from projections.lag import wait_until_projected
    from projections.recommendations.projection import RECOMMENDATIONS

    up()
    settings = load_settings()
    summary = load_file(
        settings.for_component("api"), demo_file(), loaded_by=_loader(None, "cli", "admin")
    )
    _print_load_summary(summary, as_json=False)
    asyncio.run(wait_until_projected(settings, RECOMMENDATIONS, timeout=120))
    print_report(asyncio.run(read_report(settings, DEMO_AS_OF)), ReportFormat.table)
    if summary["no_outcome"]:
        raise typer.Exit(2)


def replay(
    projection: Annotated[
        str, typer.Option(help="The projection to rebuild (only 'recommendations' exists).")
    ] = "recommendations",
    keep_old: Annotated[bool, typer.Option(help="Keep the replaced schema.")] = False,
) -> None:
    """Rebuild read models from offset 0 beside the live ones, then switch over atomically."""
    from rich.progress import BarColumn, Progress, TextColumn

    from projections.recommendations.projection import RECOMMENDATIONS
    from projections.replay import replay as run_replay

    if projection != RECOMMENDATIONS.name:
        raise fail(f"--projection: no projection named {projection!r}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} events"),
        console=err,
        transient=True,  # gone when done or failed: the table or one error line follows
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("replaying", total=None)

        def show_replayed(done: int, end: int, rate: float) -> None:
            bar.update(
                task,
                completed=done,
                total=end,
                description=f"replaying {rate:,.0f} events/s, lag {end - done}",
            )

        result = asyncio.run(
            run_replay(load_settings(), RECOMMENDATIONS, progress=show_replayed, keep_old=keep_old)
        )
    table = Table("table", "rebuilt", "incremental", "same")
    for name, digest in result.rebuilt.items():
        other = result.incremental[name]
        table.add_row(name, digest, other, "yes" if digest == other else "NO")
    console.print(table)
    console.print(
        f"replayed {result.events} events in {result.seconds:.2f}s "
        f"({result.events / max(result.seconds, 1e-6):,.0f} events/s); switched over"
    )
    if not result.identical:
        raise fail(f"read models differ; the replaced schema is kept as {result.old_schema}")


def verify(
    from_offset: Annotated[
        int,
        typer.Option(
            "--from-offset", help="Report breaks and unprojected events from this offset on."
        ),
    ] = 0,
    read_models: Annotated[
        bool, typer.Option(help="Also rebuild the read models and compare checksums.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Walk the log, every stream's hash chain and the decider's seals; name every break, every
    event not authenticated by a trusted decider key, every unreadable one and every event the
    read model could not apply; check every evidence document against its event's hash and
    name each missing or altered one; check read models. Exits 1 when any of these is found."""
    from infra.kafka_clients import read_messages
    from projections.recommendations.projection import RECOMMENDATIONS
    from projections.verify import (
        unprojected_events,
        verify_chain,
        verify_documents,
        verify_read_models,
    )

    settings = load_settings()
    messages = asyncio.run(read_messages(settings, settings.topics.events))
    chain = asyncio.run(verify_chain(settings, from_offset=from_offset, messages=messages))
    documents = asyncio.run(verify_documents(settings, from_offset=from_offset, messages=messages))
    chain.unprojected = [
        u
        for u in asyncio.run(unprojected_events(settings, RECOMMENDATIONS))
        if u.offset >= from_offset
    ]
    tables = asyncio.run(verify_read_models(settings, RECOMMENDATIONS)) if read_models else {}
    differing = sorted(t for t, (live, rebuilt) in tables.items() if live != rebuilt)
    if as_json:
        result = {
            "events": chain.events,
            "streams": chain.streams,
            "breaks": [dataclasses.asdict(b) for b in chain.breaks],
            "unauthenticated": [dataclasses.asdict(b) for b in chain.unauthenticated],
            "unreadable": [dataclasses.asdict(b) for b in chain.unreadable],
            "read_models": {t: {"live": a, "rebuilt": b} for t, (a, b) in tables.items()},
            "read_models_differing": differing,
            "unprojected": [dataclasses.asdict(u) for u in chain.unprojected],
            "documents": {
                "cited": documents.cited,
                "intact": documents.intact,
                "missing": [_document_problem(p) for p in documents.missing],
                "altered": [_document_problem(p) for p in documents.altered],
                "not_held": [dataclasses.asdict(d) for d in documents.not_held],
            },
        }
        write_json(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    else:
        console.print(
            f"{chain.events} events in {chain.streams} streams; {len(chain.breaks)} break(s), "
            f"{len(chain.unauthenticated)} not authenticated by a decider key, "
            f"{len(chain.unreadable)} unreadable"
        )
        for heading, found in (
            ("breaks", chain.breaks),
            ("not authenticated by a decider key", chain.unauthenticated),
            ("unreadable", chain.unreadable),
        ):
            if found:
                console.print(f"{heading}:")
            for b in found:
                console.print(  # a forged event's stream id is anyone's text: printed as text
                    f"  {b.topic} partition {b.partition} offset {b.offset} "
                    f"stream {b.stream_id}: {b.reason}",
                    soft_wrap=True,  # one line per event, for people and grep alike
                )
        in_chain = sum(u.in_chain for u in chain.unprojected)
        console.print(
            f"{len(chain.unprojected)} event(s) the read model could not apply; {in_chain} of "
            "them continue their stream's chain (the stream's later events were applied)"
        )
        for u in chain.unprojected:
            where = "continues its chain" if u.in_chain else "not part of its chain"
            console.print(
                f"  {u.topic} partition {u.partition} offset {u.offset} "
                f"stream {u.stream_id} version {u.stream_version} ({where}): {u.reason}",
                soft_wrap=True,
            )
        _print_documents(documents)
        if read_models:
            verdict = (
                "match the log" if not differing else f"DIFFER from the log: {', '.join(differing)}"
            )
            console.print(f"read models: {verdict}")
    if not chain.clean or differing or chain.unprojected or not documents.clean:
        raise typer.Exit(1)


def _document_problem(problem: DocumentProblem) -> dict[str, object]:
    return {**dataclasses.asdict(problem.document), "reason": problem.reason}


def _print_documents(report: DocumentReport) -> None:
    console.print(
        f"{report.cited} document citation(s): {report.intact} stored as cited, "
        f"{len(report.missing)} missing, {len(report.altered)} altered, "
        f"{len(report.not_held)} cited by hash only and not held"
    )
    for heading, found in (
        ("documents missing", report.missing),
        ("documents altered", report.altered),
    ):
        if found:
            console.print(f"{heading}:")
        for p in found:
            d = p.document
            console.print(  # names come from the log: printed as text, one line each
                f"  recommendation {d.recommendation_id} evidence {d.evidence_id} event "
                f"{d.event_id} ({d.topic} partition {d.partition} offset {d.offset}) file "
                f"{d.name!r} sha256 {d.sha256}: {p.reason}",
                soft_wrap=True,
            )
