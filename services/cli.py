"""The `rectrack` command line: translate arguments, call the services, print results."""

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from uuid import UUID

import orjson
import typer
from rich.console import Console
from rich.table import Table

from events.envelope import Actor
from events.outcome import Outcome
from infra.kafka_clients import ensure_topics
from infra.logs import configure_logging
from infra.processes import read_pid, require_free, spawn, stop_pid, wait_until
from infra.settings import Settings
from infra.stack import infrastructure_status, start_infrastructure, stop_infrastructure
from projections.recommendations.report import Report
from services.commands import Command, InvalidCommand, parse_command_bytes

if TYPE_CHECKING:
    from services.paper import Paper

app = typer.Typer(
    help="Track inspectorate recommendations from publication to closure.", no_args_is_help=True
)
topics_app = typer.Typer(help="Kafka topics of this instance.")
app.add_typer(topics_app, name="topics")
tokens_app = typer.Typer(help="Bearer tokens of the HTTP API.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
schema_app = typer.Typer(help="The subscribers' contract.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
bench_app = typer.Typer(help="Benchmarks (see BENCHMARKS.md).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("generate")
def bench_generate(
    events: Annotated[int, typer.Option(help="How many commands (each gives one event).")],
    seed: Annotated[int, typer.Option(help="Same seed, same history.")] = 1,
    out: Annotated[Path | None, typer.Option("-o", "--out")] = None,
) -> None:
    """Write a synthetic, valid, deterministic history as NDJSON commands."""
    from bench.generate import commands

    with out.open("wb") if out else sys.stdout.buffer as sink:
        for line in commands(events, seed):
            sink.write(line + b"\n")


@bench_app.command("run")
def bench_run(
    events: Annotated[int, typer.Option(help="Size of the synthetic history.")] = 10_000,
    seed: Annotated[int, typer.Option()] = 1,
    query_seconds: Annotated[
        float, typer.Option(help="How long queries are timed, at idle and again under ingest.")
    ] = 20,
    ingest_rate: Annotated[
        float, typer.Option(help="Commands/s sent while the queries are timed under ingest.")
    ] = 200,
    out: Annotated[Path | None, typer.Option("-o", "--out")] = None,
) -> None:
    """Decider vs raw, replay vs raw, then queries while ingest runs, and peak memory."""
    from bench.results import publish
    from bench.run import run as run_bench

    result = run_bench(events, seed, query_seconds=query_seconds, ingest_rate=ingest_rate)
    publish(asyncio.run(result), out)


# A fixed width when not on a terminal keeps piped output and CI logs readable.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")
DEMO_AS_OF = date(2024, 9, 18)
APP_PID = "app.pid"


class Component(StrEnum):
    """A process of the stack."""

    api = "api"
    decider = "decider"
    projector = "projector"


class Format(StrEnum):
    """Output formats of reports."""

    table = "table"
    json = "json"


def _settings() -> Settings:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return settings


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


# ---------------------------------------------------------------- stack lifecycle


def _app_pid(settings: Settings) -> int | None:
    return read_pid(settings.run_dir / APP_PID)


def _api_healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@app.command()
def up() -> None:
    """Start the broker, the database and the app (API, decider, projector) in the background."""
    settings = _settings()
    try:
        started = start_infrastructure(settings)
        if _app_pid(settings) is None:
            require_free(settings.api_port, "the API (RECTRACK_API_PORT)")
            spawn(
                [sys.executable, "-m", "services.cli", "run", "--no-infrastructure"],
                pid_file=settings.run_dir / APP_PID,
                log_file=settings.log_dir / "app.log",
            )
            started.append("app")
        wait_until(lambda: _api_healthy(settings), timeout=120, what="the rectrack API")
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        raise _fail(f"{exc} (logs in {settings.log_dir})") from exc
    console.print(f"started: {', '.join(started) or 'nothing (already running)'}")
    _print_status(settings)


@app.command()
def down() -> None:
    """Stop the app, the broker and the database of this RECTRACK_HOME."""
    settings = _settings()
    stopped = []
    pid = _app_pid(settings)
    if pid is not None:
        stop_pid(pid, timeout=30)
        (settings.run_dir / APP_PID).unlink(missing_ok=True)
        stopped.append("app")
    stopped += stop_infrastructure(settings)
    console.print(f"stopped: {', '.join(stopped) or 'nothing (not running)'}")


@app.command()
def status() -> None:
    """Say what runs, where: broker, database, app, API URL and projection lag."""
    _print_status(_settings())


def _print_status(settings: Settings) -> None:
    table = Table("service", "state", "pid", "address")
    for s in infrastructure_status(settings):
        state = ("running" if s.running else "stopped") + ("" if s.managed else " (external)")
        table.add_row(s.name, state, str(s.pid or "-"), s.address)
    pid = _app_pid(settings)
    api_state = "running" if _api_healthy(settings) else ("starting" if pid else "stopped")
    table.add_row("app (api, decider, projector)", api_state, str(pid or "-"), settings.api_url)
    console.print(table)
    console.print(f"API:        {settings.api_url}")
    console.print(f"Bootstrap:  {settings.bootstrap_servers}")
    console.print(f"Database:   {settings.database_url} (schema {settings.db_schema})")
    console.print(f"Home:       {settings.home}")
    if all(s.running for s in infrastructure_status(settings)):
        _print_lag(settings)


def _print_lag(settings: Settings) -> None:
    from services.lag import projection_lag

    try:
        lag = asyncio.run(projection_lag(settings))
    except (OSError, RuntimeError) as exc:
        console.print(f"Projection: unknown ({exc})")
        return
    last = f"{lag.last_event_at:%Y-%m-%d %H:%M:%S}" if lag.last_event_at else "none"
    console.print(
        f"Projection: {lag.projection} at {lag.log_total - lag.behind} of {lag.log_total} "
        f"events (lag {lag.behind}, last event recorded {last}, {lag.errors} errors)"
    )
    console.print(f"Dead letters: {lag.dead_letters}")


@topics_app.command("create")
def topics_create() -> None:
    """Create this instance's topics (idempotent)."""
    settings = _settings()
    created = asyncio.run(ensure_topics(settings))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")


@schema_app.command("export")
def schema_export(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("contract"),
) -> None:
    """Write asyncapi.json and a JSON Schema per event type (schemas/NAME.json)."""
    from services.contract import asyncapi_document, event_schemas

    settings = Settings.from_env()
    (out / "schemas").mkdir(parents=True, exist_ok=True)
    document = asyncapi_document(settings.topics, settings.bootstrap_servers)
    (out / "asyncapi.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    for name, schema in event_schemas().items():
        (out / "schemas" / f"{name}.json").write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2)
        )
    console.print(f"wrote {out / 'asyncapi.json'} and {len(event_schemas())} event schemas")


# ---------------------------------------------------------------- API tokens


async def _with_connection(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from infra.database import create_pool, migrate

    pool = await create_pool(settings, max_size=1)
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()


class RoleName(StrEnum):
    """Roles a token can carry."""

    admin = "admin"
    contributor = "contributor"
    inspector = "inspector"
    viewer = "viewer"


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="Who the token is for.")],
    team: Annotated[str, typer.Option(help="Their team.")],
    role: Annotated[RoleName, typer.Option(help="What they may do.")],
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from services.tokens import create_token

    actor = Actor(name=name, team=team, role=role.value)
    token_id, token = asyncio.run(
        _with_connection(_settings(), lambda conn: create_token(conn, actor))
    )
    err.print(f"token {token_id} for {name} ({team}, {role.value}); it is shown only now:")
    sys.stdout.write(token + "\n")


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never the tokens themselves)."""
    from services.tokens import list_tokens

    rows = asyncio.run(_with_connection(_settings(), list_tokens))
    table = Table("token_id", "name", "team", "role", "created", "revoked")
    for t in rows:
        revoked = f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-"
        table.add_row(
            str(t.token_id), t.name, t.team, t.role, f"{t.created_at:%Y-%m-%d %H:%M}", revoked
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[UUID, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: it stops working at once."""
    from services.tokens import revoke_token

    if not asyncio.run(_with_connection(_settings(), lambda conn: revoke_token(conn, token_id))):
        raise _fail(f"no live token {token_id}")
    console.print(f"revoked {token_id}")


# ---------------------------------------------------------------- running the processes


@app.command()
def run(
    component: Annotated[
        list[Component] | None,
        typer.Option("--component", "-c", help="Run only these (default: all three)."),
    ] = None,
    infrastructure: Annotated[
        bool, typer.Option(help="Start the broker and database first if they are not running.")
    ] = True,
) -> None:
    """Run the API, the decider and the projector in the foreground; Ctrl-C stops all."""
    settings = _settings()
    wanted = component or list(Component)
    if len(wanted) == 1:
        _run_component(settings, wanted[0])
        return
    if infrastructure:
        start_infrastructure(settings)
    raise typer.Exit(_supervise(wanted))


def _supervise(components: list[Component]) -> int:
    children = {
        c: subprocess.Popen([sys.executable, "-m", "services.cli", "run", "-c", c.value])
        for c in components
    }
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        exited = [c for c, child in children.items() if child.poll() is not None]
        if exited:
            err.print(f"[red]{', '.join(exited)} exited; stopping the others[/red]")
            stop(signal.SIGTERM, None)
            break
        time.sleep(0.2)
    codes = [child.wait() for child in children.values()]
    return 0 if stopping and not any(c not in (0, -signal.SIGTERM) for c in codes) else 1


def _run_component(settings: Settings, component: Component) -> None:
    if component is Component.api:
        import uvicorn

        from services.api import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
        )
        return
    from faust.worker import Worker

    asyncio.run(ensure_topics(settings))
    if component is Component.decider:
        from services.decider_worker import build_decider_app

        faust_app = build_decider_app(settings)
    else:
        from projections.worker import build_projector_app

        faust_app = build_projector_app(settings)
    level = "warn" if settings.log_level in ("warning", "warn") else settings.log_level
    worker = Worker(faust_app, loglevel=level, quiet=True, redirect_stdouts=False)
    # Faust's progress spinner sets the root logger to DEBUG so that every record turns it;
    # the spinner stops at start-up but the level stays, and every aiokafka send then builds
    # a debug record nobody prints (about 8 % of the decider's time).
    worker.spinner = None
    worker.execute_from_commandline()


# ---------------------------------------------------------------- loading commands


def _read_commands(
    path: Path, loaded_by: Actor | None
) -> tuple[list[tuple[int, Command]], list[tuple[int, str]]]:
    commands, invalid = [], []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                command = parse_command_bytes(line)  # also refuses over-long lines
            except InvalidCommand as exc:
                invalid.append((number, str(exc)))
            else:
                commands.append((number, command.model_copy(update={"loaded_by": loaded_by})))
    return commands, invalid


async def _submit_all(
    settings: Settings, commands: list[Command], *, timeout: float, quiet: bool
) -> dict[str, Outcome]:
    from services.gateway import CommandGateway

    gateway = CommandGateway(settings)
    await gateway.start()
    try:
        shown = -1

        def progress(done: int, total: int) -> None:
            nonlocal shown
            if not quiet and (done == total or done - shown >= 50):
                shown = done
                sys.stderr.write(f"\r{done}/{total} decided")
                sys.stderr.flush()

        outcomes = {}
        pending = commands
        for _attempt in range(3):  # resend what got no outcome: same command_id, so safe
            got = await gateway.submit(pending, timeout=timeout, progress=progress)
            outcomes.update({str(k): v for k, v in got.items()})
            pending = [c for c in pending if str(c.command_id) not in outcomes]
            if not pending:
                break
        if not quiet:
            sys.stderr.write("\n")
        return outcomes
    finally:
        await gateway.stop()


def load_file(
    settings: Settings,
    path: Path,
    *,
    loaded_by: Actor | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> dict[str, object]:
    """Send every command of an NDJSON file in order; summarise accepted and rejected."""
    numbered, invalid = _read_commands(path, loaded_by)
    commands = [c for _, c in numbered]
    outcomes = asyncio.run(_submit_all(settings, commands, timeout=timeout, quiet=quiet))
    rejected = [
        {"line": n, "command_id": str(c.command_id), "reason": o.reason, "detail": o.detail}
        for n, c in numbered
        if (o := outcomes.get(str(c.command_id))) and o.status == "rejected"
    ] + [
        {"line": n, "command_id": None, "reason": "invalid_command", "detail": d}
        for n, d in invalid
    ]
    rejected.sort(key=lambda r: int(str(r["line"])))
    return {
        "file": str(path),
        "commands": len(commands) + len(invalid),
        "accepted": sum(o.status == "accepted" for o in outcomes.values()),
        "rejected": len(rejected),
        "no_outcome": len(commands) - len(outcomes),
        "reasons": dict(Counter(str(r["reason"]) for r in rejected)),
        "rejections": rejected,
    }


@app.command()
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
    summary = load_file(_settings(), file, loaded_by=loader, timeout=timeout, quiet=as_json)
    _print_load_summary(summary, as_json)
    if summary["no_outcome"]:
        raise typer.Exit(2)


def _loader(name: str | None, team: str, role: str) -> Actor:
    try:
        return Actor.model_validate(
            {"name": name or os.environ.get("USER") or "rectrack-cli", "team": team, "role": role}
        )
    except ValueError as exc:
        raise _fail(f"--loader-role: {exc}") from exc


def _print_load_summary(summary: dict[str, object], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console.print(
        f"{summary['commands']} commands: {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected, {summary['no_outcome']} without an outcome"
    )
    rejections = summary["rejections"]
    assert isinstance(rejections, list)
    for r in rejections[:50]:
        console.print(f"  line {r['line']}: {r['reason']} — {r['detail']}")


# ---------------------------------------------------------------- reports


async def _report(
    settings: Settings,
    as_of: date,
    since: date | None,
    known_at: datetime | None,
    inspection: str | None,
) -> Report:
    from infra.database import create_pool
    from projections.recommendations import queries

    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await queries.report(
                conn, as_of=as_of, since=since, known_at=known_at, inspection_id=inspection
            )
    finally:
        await pool.close()


def print_report(report: Report, fmt: Format) -> None:
    """Print the committee table, or the report as JSON."""
    if fmt is Format.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    since = f"Closed since {report.since}" if report.since else "Closed (no earlier update)"
    table = Table(
        "Inspection",
        "Total",
        "Closed",
        "Ongoing – on track",
        "Ongoing – delayed",
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


@app.command()
def report(
    as_of: Annotated[
        datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Business date.")
    ],
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Start of 'since the last update'."),
    ] = None,
    known_at: Annotated[
        datetime | None, typer.Option("--known-at", help="System time: what was known then.")
    ] = None,
    inspection: Annotated[str | None, typer.Option(help="Only this inspection id.")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Total | Closed | Ongoing – on track | Ongoing – delayed per inspection, as of a date."""
    settings = _settings()
    result = asyncio.run(
        _report(settings, as_of.date(), since.date() if since else None, known_at, inspection)
    )
    print_report(result, fmt)


class PackFormat(StrEnum):
    """Output formats of history and handover."""

    markdown = "markdown"
    json = "json"


@app.command()
def history(
    recommendation_id: Annotated[str, typer.Argument(help="For example hate-crime-2021/r6.")],
    fmt: Annotated[PackFormat, typer.Option("--format")] = PackFormat.markdown,
) -> None:
    """Every event of a recommendation in order: what, when (effective and recorded), who."""
    from projections.recommendations import queries

    entries = asyncio.run(
        _with_connection(_settings(), lambda conn: queries.history(conn, recommendation_id))
    )
    if not entries:
        raise _fail(f"no recommendation {recommendation_id}")
    if fmt is PackFormat.json:
        payload = [e.model_dump(mode="json") for e in entries]
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
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


@app.command()
def handover(
    recommendation_id: Annotated[str, typer.Argument(help="For example hate-crime-2021/r6.")],
    fmt: Annotated[PackFormat, typer.Option("--format")] = PackFormat.markdown,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Default today.")
    ] = None,
) -> None:
    """The pack a new owner needs: text, status, owners, evidence, asks, last position."""
    from projections.recommendations import queries
    from projections.recommendations.handover import render_markdown

    day = as_of.date() if as_of else date.today()
    pack = asyncio.run(
        _with_connection(
            _settings(), lambda conn: queries.handover(conn, recommendation_id, as_of=day)
        )
    )
    if pack is None:
        raise _fail(f"no recommendation {recommendation_id}")
    if fmt is PackFormat.json:
        sys.stdout.write(pack.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(pack))


@app.command()
def replay(
    projection: Annotated[
        str, typer.Option(help="The projection to rebuild (only 'recommendations' exists).")
    ] = "recommendations",
    keep_old: Annotated[bool, typer.Option(help="Keep the replaced schema.")] = False,
) -> None:
    """Rebuild read models from offset 0 beside the live ones, then switch over atomically."""
    from rich.progress import BarColumn, Progress, TextColumn

    from projections.recommendations import project as recommendations
    from projections.replay import replay as run_replay

    if projection != recommendations.NAME:
        raise _fail(f"--projection: no projection named {projection!r}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} events"),
        console=err,
    ) as bar:
        task = bar.add_task("replaying", total=None)

        def progress(done: int, end: int, rate: float) -> None:
            bar.update(
                task,
                completed=done,
                total=end,
                description=f"replaying {rate:,.0f} events/s, lag {end - done}",
            )

        result = asyncio.run(run_replay(_settings(), progress=progress, keep_old=keep_old))
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
        raise _fail(f"read models differ; the replaced schema is kept as {result.old_schema}")


class PaperFormat(StrEnum):
    """Output formats of the committee paper."""

    md = "md"
    html = "html"
    pdf = "pdf"


def write_paper(paper: "Paper", fmt: PaperFormat, out: Path | None) -> bytes:
    """Render a paper; with Markdown and a file, charts go beside it as SVG files."""
    from services.paper_render import charts, render_html, render_markdown, render_pdf

    if fmt is PaperFormat.md:
        links: dict[str, str] = {}
        if out is not None:
            folder = out.with_name(out.stem + "-charts")
            folder.mkdir(parents=True, exist_ok=True)
            for inspection_id, svg in charts(paper).items():
                (folder / f"{inspection_id}.svg").write_text(svg)
                links[inspection_id] = f"{folder.name}/{inspection_id}.svg"
        return render_markdown(paper, links).encode()
    html = render_html(paper, charts(paper))
    return html.encode() if fmt is PaperFormat.html else render_pdf(html)


@app.command()
def paper(
    meeting: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="The meeting date.")],
    committee: Annotated[str | None, typer.Option(help="Only this committee's updates.")] = None,
    fmt: Annotated[PaperFormat, typer.Option("--format")] = PaperFormat.md,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="File to write.")] = None,
    known_at: Annotated[
        datetime | None, typer.Option("--known-at", help="Rebuild as the log stood then.")
    ] = None,
) -> None:
    """The improvement update for a committee meeting, from the log alone."""
    from services.paper import build_paper

    built = asyncio.run(
        _with_connection(
            _settings(),
            lambda conn: build_paper(
                conn, meeting=meeting.date(), committee=committee, known_at=known_at
            ),
        )
    )
    content = write_paper(built, fmt, out)
    if out is None:
        if fmt is PaperFormat.pdf:
            raise _fail("--format pdf needs -o FILE")
        sys.stdout.write(content.decode())
        return
    out.write_bytes(content)
    err.print(f"wrote {out}")


@app.command()
def verify(
    from_offset: Annotated[
        int, typer.Option("--from-offset", help="Report breaks from this offset on.")
    ] = 0,
    read_models: Annotated[
        bool, typer.Option(help="Also rebuild the read models and compare checksums.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Walk the log and every stream's hash chain; report the first break; check read models."""
    from services.verify import verify_chain, verify_read_models

    settings = _settings()
    chain = asyncio.run(verify_chain(settings, from_offset=from_offset))
    tables = asyncio.run(verify_read_models(settings)) if read_models else {}
    differing = sorted(t for t, (live, rebuilt) in tables.items() if live != rebuilt)
    if as_json:
        result = {
            "events": chain.events,
            "streams": chain.streams,
            "breaks": [dataclasses.asdict(b) for b in chain.breaks],
            "read_models": {t: {"live": a, "rebuilt": b} for t, (a, b) in tables.items()},
            "read_models_differing": differing,
        }
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print(
            f"{chain.events} events in {chain.streams} streams; {len(chain.breaks)} break(s)"
        )
        for b in chain.breaks:
            console.print(
                f"  {b.topic} partition {b.partition} offset {b.offset} "
                f"stream {b.stream_id}: {b.reason}"
            )
        if read_models:
            console.print(
                "read models: "
                + (
                    "match the log"
                    if not differing
                    else f"DIFFER from the log: {', '.join(differing)}"
                )
            )
    if chain.breaks or differing:
        raise typer.Exit(1)


# ---------------------------------------------------------------- demo


def demo_file() -> Path:
    """The bundled dataset built from the public record."""
    return Path(str(resources.files("services").joinpath("demo", "public_record.ndjson")))


@app.command()
def demo() -> None:
    """Start the stack, load the public-record dataset, print the 18 September 2024 table."""
    from services.lag import wait_until_projected

    up()
    settings = _settings()
    summary = load_file(settings, demo_file(), loaded_by=_loader(None, "cli", "admin"))
    _print_load_summary(summary, as_json=False)
    asyncio.run(wait_until_projected(settings, timeout=120))
    result = asyncio.run(_report(settings, DEMO_AS_OF, None, None, None))
    print_report(result, Format.table)
    if summary["no_outcome"]:
        raise typer.Exit(2)


def main() -> None:
    """Console script entry point."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    app()


if __name__ == "__main__":
    main()
