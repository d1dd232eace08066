"""Reports: the committee table, a recommendation's history and handover, the paper."""

import asyncio
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from infra.settings import Settings
from projections.recommendations.report import Report
from projections.status import STATUS_WORDS
from services.cli.dates import DAY, MOMENT, day_option, moment_option
from services.cli.output import console, err, fail, load_settings, with_connection, write_json
from services.paper.render import PaperFormat


class ReportFormat(StrEnum):
    """Output formats of reports."""

    table = "table"
    json = "json"


class PackFormat(StrEnum):
    """Output formats of history and handover."""

    markdown = "markdown"
    json = "json"


async def read_report(
    settings: Settings,
    as_of: date,
    since: date | None = None,
    known_at: datetime | None = None,
    inspection: str | None = None,
    committee: str | None = None,
) -> Report:
    """The report from the read model (UnknownCommittee for a committee with no update)."""
    from projections.recommendations import queries

    return await with_connection(
        settings,
        lambda conn: queries.report(
            conn,
            as_of=as_of,
            since=since,
            known_at=known_at,
            inspection_id=inspection,
            committee=committee,
        ),
    )


def print_report(report: Report, fmt: ReportFormat) -> None:
    """Print the committee table, or the report as JSON."""
    if fmt is ReportFormat.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    since = f"Closed since {report.since}" if report.since else "Closed (no earlier update)"
    table = Table(
        "Inspection",
        "Total",
        STATUS_WORDS["closed"],
        STATUS_WORDS["ongoing_on_track"],
        STATUS_WORDS["ongoing_delayed"],
        since,
        title=f"HMICS recommendations as at {report.as_of:%d %B %Y}",
    )
    for line in report.inspections:
        table.add_row(
            line.title,
            str(line.total),
            str(line.closed),
            str(line.ongoing_on_track),
            str(line.ongoing_delayed),
            ", ".join(map(str, line.closed_since)) or "–",
        )
    console.print(table)
    if report.since_note:
        console.print(report.since_note)


def report(
    as_of: Annotated[
        date,
        typer.Option("--as-of", parser=day_option("--as-of"), metavar=DAY, help="Business date."),
    ],
    since: Annotated[
        date | None,
        typer.Option(
            parser=day_option("--since"),
            metavar=DAY,
            help="Start of 'since the last update'; not after --as-of.",
        ),
    ] = None,
    known_at: Annotated[
        datetime | None,
        typer.Option(
            "--known-at",
            parser=moment_option("--known-at"),
            metavar=MOMENT,
            help="System time: what was known then (a date: its start; no offset: local time).",
        ),
    ] = None,
    inspection: Annotated[str | None, typer.Option(help="Only this inspection id.")] = None,
    committee: Annotated[
        str | None,
        typer.Option(help="'Since the last update' is this committee's (its id or its name)."),
    ] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.table,
) -> None:
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date."""
    from projections.recommendations.queries import UnknownCommittee, UnknownInspection

    if since is not None and since > as_of:
        raise fail(f"--since {since} is after --as-of {as_of}: nothing can close in between")
    try:
        result = asyncio.run(
            read_report(load_settings(), as_of, since, known_at, inspection, committee)
        )
    except UnknownCommittee as exc:
        raise fail(f"--committee: {exc}") from None
    except UnknownInspection as exc:
        raise fail(f"--inspection: {exc}") from None
    if fmt is ReportFormat.json and result.since_basis == "no_earlier_update":
        err.print(Text("note:", style="yellow"), result.since_note)
    print_report(result, fmt)


def history(
    recommendation_id: Annotated[str, typer.Argument(help="For example hate-crime-2021/r6.")],
    fmt: Annotated[PackFormat, typer.Option("--format")] = PackFormat.markdown,
) -> None:
    """Every event of a recommendation in order: what, when (effective and recorded), who."""
    from projections.recommendations import queries

    entries = asyncio.run(
        with_connection(load_settings(), lambda conn: queries.history(conn, recommendation_id))
    )
    if not entries:
        raise fail(f"no recommendation {recommendation_id}")
    if fmt is PackFormat.json:
        payload = [e.model_dump(mode="json") for e in entries]
        write_json(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        return
    table = Table("v", "effective", "recorded", "who", "what", title=recommendation_id)
    for e in entries:
        who = f"{e.actor.name} ({e.actor.team}, {e.actor.role})"
        if e.loaded_by:
            who += f" loaded by {e.loaded_by.name}"
        what = e.summary + "".join(f"\n  {d.name} sha256:{d.sha256}" for d in e.documents)
        table.add_row(
            str(e.stream_version),
            str(e.effective_date),
            f"{e.recorded_at:%Y-%m-%d %H:%M:%S}",
            who,
            what,
        )
    console.print(table)


def handover(
    recommendation_id: Annotated[str, typer.Argument(help="For example hate-crime-2021/r6.")],
    fmt: Annotated[PackFormat, typer.Option("--format")] = PackFormat.markdown,
    as_of: Annotated[
        date | None,
        typer.Option("--as-of", parser=day_option("--as-of"), metavar=DAY, help="Default today."),
    ] = None,
) -> None:
    """The pack a new owner needs: text, status, owners, evidence, asks, last position."""
    from projections.recommendations import queries
    from projections.recommendations.handover import handover_markdown

    day = as_of or date.today()
    settings = load_settings()
    pack = asyncio.run(
        with_connection(settings, lambda conn: queries.handover(conn, recommendation_id, as_of=day))
    )
    if pack is None:
        raise fail(f"no recommendation {recommendation_id}")
    if fmt is PackFormat.json:
        sys.stdout.write(pack.model_dump_json(indent=2) + "\n")
    else:
        # Documents link to this instance's API, where they download with a token.
        sys.stdout.write(handover_markdown(pack, base_url=settings.api_url))


def paper(
    meeting: Annotated[
        date,
        typer.Option(
            # Its bounds are a meeting's, checked below (and by the API) with check_meeting.
            parser=day_option("--meeting", bounded=False),
            metavar=DAY,
            help="The meeting date.",
        ),
    ],
    committee: Annotated[
        str | None, typer.Option(help="Only this committee's updates (its id or its name).")
    ] = None,
    fmt: Annotated[PaperFormat, typer.Option("--format")] = PaperFormat.md,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="File to write.")] = None,
    known_at: Annotated[
        datetime | None,
        typer.Option(
            "--known-at",
            parser=moment_option("--known-at"),
            metavar=MOMENT,
            help="Rebuild as the log stood then (a date: its start; no offset: local time).",
        ),
    ] = None,
) -> None:
    """The improvement update for a committee meeting, from the log alone."""
    from projections.recommendations.queries import UnknownCommittee
    from services.paper.assemble import build_paper, check_meeting
    from services.paper.render import chart_link, charts, render

    if out is None and fmt is PaperFormat.pdf:
        raise fail("--format pdf needs -o FILE")
    try:
        check_meeting(meeting)
    except ValueError as exc:
        raise fail(f"--meeting: {exc}") from exc
    try:
        built = asyncio.run(
            with_connection(
                load_settings(),
                lambda conn: build_paper(
                    conn, meeting=meeting, committee=committee, known_at=known_at
                ),
            )
        )
    except UnknownCommittee as exc:
        raise fail(f"--committee: {exc}") from None
    if built.since_basis == "no_earlier_update":
        err.print(Text("note:", style="yellow"), built.since_note)
    links: dict[str, str | None] = {}
    if fmt is PaperFormat.md and out is not None:
        # Beside a Markdown file, the charts go as SVG files it links to.
        folder = out.with_name(out.stem + "-charts")
        folder.mkdir(parents=True, exist_ok=True)
        for inspection_id, svg in charts(built).items():
            if svg is None:
                links[inspection_id] = None  # the paper says the chart is missing
                continue
            (folder / f"{inspection_id}.svg").write_text(svg)
            links[inspection_id] = chart_link(folder.name, inspection_id)
    content = render(built, fmt, links)
    if out is None:
        sys.stdout.write(content.decode())
        return
    out.write_bytes(content)
    err.print(f"wrote {out}")
