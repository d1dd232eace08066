"""Stack commands: up, down, status, run, and the topics of this instance."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import structlog
import typer
from aiokafka.errors import KafkaError

from infra.kafka_clients import admin_client, ensure_topics
from infra.kafka_security import component_topics, prepare_kafka
from infra.kafka_topics import TopicsReport
from infra.kafka_topics import report as topics_report
from infra.logs import configure_logging
from infra.processes import read_pid, require_free, spawn, stop_pid, wait_until
from infra.settings import Settings
from infra.stack import (
    active_controller,
    infrastructure_status,
    start_infrastructure,
    stop_infrastructure,
)
from infra.tracing import configure_tracing
from services.cli.output import SERVICE, console, fail, load_settings

APP_PID = "app.pid"
topics_app = typer.Typer(help="Kafka topics of this instance.")


class Component(StrEnum):
    """A process of the stack."""

    api = "api"
    decider = "decider"
    projector = "projector"


def _app_pid(settings: Settings) -> int | None:
    return read_pid(settings.run_dir / APP_PID)


def _api_healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _local_url(settings: Settings, port: int) -> str:
    host = settings.metrics_host if settings.metrics_host not in ("0.0.0.0", "::") else "localhost"
    return f"http://{host}:{port}"


def component_readiness(settings: Settings, component: str) -> str:
    """What a component's /health/ready says: "ready", "not ready: <failing checks>" or
    "not answering"; a worker with no partitions says so."""
    port = settings.component_port(component)
    if port == 0:
        return "no health port"
    base = settings.api_url if component == "api" else _local_url(settings, port)
    try:
        with urllib.request.urlopen(f"{base}/health/ready", timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return "not answering"
    checks = body.get("checks", {})
    failing = [name for name, check in checks.items() if not check.get("ok")]
    if failing:
        return "not ready: " + ", ".join(failing)
    partitions = checks.get("partitions", {}).get("detail")
    return "ready" + (f" ({partitions})" if partitions else "")


def _components_ready(settings: Settings) -> bool:
    return all(
        component_readiness(settings, c.value).startswith(("ready", "no health port"))
        for c in Component
    )


Brokers = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        help="Kafka nodes: 1, or a cluster of 3 (RECTRACK_KAFKA_BROKERS); the home remembers it.",
    ),
]


def _settings(brokers: int | None) -> Settings:
    """Settings, with --brokers as RECTRACK_KAFKA_BROKERS (so the app processes see it too)."""
    if brokers is not None:
        os.environ["RECTRACK_KAFKA_BROKERS"] = str(brokers)
    return load_settings(trace=False)  # `run` traces each component under its own name


def up(brokers: Brokers = None) -> None:
    """Start the broker (or a cluster of three), the database and the app (API, decider,
    projector) in the background; return once every component says it is ready."""
    settings = _settings(brokers)
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
        # Then each component's own readiness (its brokers, database and partitions): a
        # command sent the moment `up` returns is decided, and its event projected, at once.
        wait_until(
            lambda: _components_ready(settings),
            timeout=120,
            what="every component (each one's /health/ready)",
        )
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        raise fail(f"{exc} (logs in {settings.log_dir})") from exc
    console.print(f"started: {', '.join(started) or 'nothing (already running)'}")
    _print_status(settings)


def down() -> None:
    """Stop the app, the broker and the database of this RECTRACK_HOME."""
    settings = load_settings()
    stopped = []
    pid = _app_pid(settings)
    if pid is not None:
        stop_pid(pid, timeout=30)
        (settings.run_dir / APP_PID).unlink(missing_ok=True)
        stopped.append("app")
    stopped += stop_infrastructure(settings)
    console.print(f"stopped: {', '.join(stopped) or 'nothing (not running)'}")


def status() -> None:
    """Say what runs, where: broker (each node and the active controller of a cluster),
    database, app, each component's readiness and restarts, API URL and projection lag.

    Exits 0 when everything runs and each component is ready; otherwise 1, its last line
    (on stderr) naming what is stopped or not ready and what to do."""
    settings = load_settings()
    problem = _print_status(settings)
    if problem is not None:
        raise fail(problem)


APP = "app (api, decider, projector)"


def _print_status(settings: Settings) -> str | None:
    """Print the status; return one line naming what is stopped or not ready, or None."""
    from rich.table import Table

    infrastructure = infrastructure_status(settings)
    nodes = [s for s in infrastructure if s.node_id is not None]
    controller = _controller(settings) if any(s.running for s in nodes) else None
    table = Table("service", "state", "pid", "address")
    stopped: list[str] = []
    not_ready: list[str] = []
    for s in infrastructure:
        state = ("running" if s.running else "stopped") + ("" if s.managed else " (external)")
        if s.node_id is not None and s.node_id == controller:
            state += ", active controller"
        if not s.running:
            stopped.append(s.name)
        table.add_row(s.name, state, str(s.pid or "-"), s.address)
    pid = _app_pid(settings)
    supervised = supervisor_state(settings)
    if _api_healthy(settings):
        app_state = "running"
    elif pid or supervised:
        app_state = "starting"
        not_ready.append("app (starting)")
    else:
        app_state = "stopped"
    table.add_row(APP, app_state, str(pid or "-"), settings.api_url)
    for component in Component:
        port = settings.component_port(component.value)
        address = f"{_local_url(settings, port)}/health/ready" if port else "-"
        told = supervised.get(component.value, {})
        state = component_readiness(settings, component.value)
        wrong = None
        if state == "not answering" and app_state == "stopped":
            # Nothing runs it (no `rectrack up` or `run` here): said once, as the app's.
            state = "stopped"
        elif not state.startswith(("ready", "no health port")):
            wrong = state
        if told.get("crash_looping"):
            state += f", crash-looping (exit code {told.get('last_exit_code')})"
            wrong = "crash-looping" + (f", {wrong}" if wrong else "")
        if wrong is not None:
            not_ready.append(f"{component.value} ({wrong})")
        if told.get("restarts"):
            state += f", restarted {told['restarts']} times"
        table.add_row(f"  {component.value}", state, str(told.get("pid") or "-"), address)
    if app_state == "stopped":
        stopped.append(APP)
    console.print(table)
    console.print(f"API:        {settings.api_url}")
    console.print(f"Bootstrap:  {settings.bootstrap_servers}")
    if nodes:
        said = "unknown (no node answers)" if controller is None else f"node {controller}"
        console.print(f"Controller: {said}")
    console.print(f"Kafka auth: {_kafka_auth(settings)}")
    console.print(f"Database:   {settings.database_url_redacted} (schema {settings.db_schema})")
    console.print(f"Home:       {settings.home}")
    if all(s.running for s in infrastructure):
        _print_lag(settings)
        _print_topics(settings)
    if stopped:
        # `up` starts whatever of this home is not running, and leaves the rest as it is.
        said = f"stopped: {', '.join(stopped)} — run `rectrack up`"
        return said + (f"; not ready: {', '.join(not_ready)}" if not_ready else "")
    if not_ready:
        log = settings.log_dir / "app.log"
        return f"not ready: {', '.join(not_ready)} — see the app's log ({log} under `rectrack up`)"
    return None


def _controller(settings: Settings) -> int | None:
    """The cluster's active controller, or None when it cannot be asked."""
    try:
        return active_controller(settings)
    except (OSError, RuntimeError):
        return None


def _kafka_auth(settings: Settings) -> str:
    """How this CLI connects to Kafka: protocol, mechanism, user and CA; never the password."""
    said = settings.kafka_security_protocol
    if settings.kafka_sasl:
        said += f" {settings.kafka_sasl_mechanism} as {settings.kafka_principal}"
    if settings.kafka_ca_path is not None:
        said += f" (CA {settings.kafka_ca_path})"
    return said


def _print_lag(settings: Settings) -> None:
    from projections.lag import projection_lag
    from projections.recommendations.projection import RECOMMENDATIONS

    try:
        lag = asyncio.run(projection_lag(settings, RECOMMENDATIONS))
    except (OSError, RuntimeError) as exc:
        console.print(f"Projection: unknown ({exc})")
        return
    last = f"{lag.last_event_at:%Y-%m-%d %H:%M:%S}" if lag.last_event_at else "none"
    console.print(
        f"Projection: {lag.projection} at {lag.log_total - lag.behind} of {lag.log_total} "
        f"events (lag {lag.behind}, last event recorded {last}, {lag.errors} errors)"
    )
    console.print(f"Dead letters: {lag.dead_letters}")


async def _topics_report(settings: Settings) -> TopicsReport:
    admin = admin_client(settings)
    await admin.start()
    try:
        return await topics_report(admin, settings)
    finally:
        await admin.close()


def _print_topics(settings: Settings) -> None:
    """Per topic: partitions, replication factor, min.insync.replicas, under-replicated."""
    from rich.table import Table

    try:
        report = asyncio.run(_topics_report(settings))
    except (OSError, RuntimeError, KafkaError) as exc:
        console.print(f"Topics: unknown ({exc})")
        return
    console.print(f"Replication: {report.policy_text}")
    table = Table("topic", "partitions", "replication factor", "min ISR", "under-replicated")
    for topic in report.topics:
        if not topic["exists"]:
            table.add_row(topic["topic"], "missing", "-", "-", "-")
            continue
        table.add_row(
            topic["topic"],
            str(topic["partitions"]),
            str(topic["replication_factor"]),
            str(topic["min_insync_replicas"]),
            str(topic["under_replicated_partitions"]),
        )
    console.print(table)


@topics_app.command("create")
def topics_create() -> None:
    """Create this instance's topics (idempotent)."""
    settings = load_settings()
    created = asyncio.run(ensure_topics(settings))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")


def run(
    component: Annotated[
        list[Component] | None,
        typer.Option("--component", "-c", help="Run only these (default: all three)."),
    ] = None,
    infrastructure: Annotated[
        bool, typer.Option(help="Start the broker and database first if they are not running.")
    ] = True,
    brokers: Brokers = None,
) -> None:
    """Run the API, the decider and the projector in the foreground; Ctrl-C stops all."""
    settings = _settings(brokers)
    # A service: every library's warnings are logged too (infra/logs.py), and a failure is a
    # record of the log (so a JSON log stays JSON to its last line).
    configure_logging(settings.log_level, settings.log_format)
    SERVICE["running"] = True
    wanted = component or list(Component)
    if len(wanted) == 1:
        _run_component(settings, wanted[0])
        return
    if infrastructure:
        start_infrastructure(settings)
    # Before any child starts: the API follows the outcomes topic from its first moment.
    asyncio.run(prepare_kafka(settings))
    raise typer.Exit(_supervise(settings, wanted))


# A component that dies is started again after BACKOFF_FIRST seconds, doubling at each quick
# death up to BACKOFF_CAP; one that ran STABLE_SECONDS before dying starts from the first delay.
# After CRASH_LOOP quick deaths in a row `rectrack status` reports it as crash-looping.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
STABLE_SECONDS = 60.0
CRASH_LOOP = 3
SUPERVISOR_STATE = "supervisor.json"


@dataclass
class _Child:
    component: Component
    process: subprocess.Popen[bytes]
    started: float
    restarts: int = 0
    quick_deaths: int = 0
    last_exit_code: int | None = None
    restart_at: float | None = None

    def state(self) -> dict[str, object]:
        return {
            "pid": self.process.pid if self.restart_at is None else None,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "crash_looping": self.quick_deaths >= CRASH_LOOP,
            "waiting_to_restart": self.restart_at is not None,
        }


def _start_child(component: Component) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "run", "-c", component.value])


def backoff(quick_deaths: int) -> float:
    """The delay before restarting a component after its n-th quick death in a row (n >= 1)."""
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, quick_deaths - 1)))


def _write_state(settings: Settings, children: dict[Component, _Child]) -> None:
    path = settings.run_dir / SUPERVISOR_STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps({"pid": os.getpid(), "components": {c: k.state() for c, k in children.items()}})
    )
    temporary.replace(path)


def supervisor_state(settings: Settings) -> dict[str, dict[str, object]]:
    """What the running supervisor (`rectrack run`/`up`) last said of each component."""
    try:
        state = json.loads((settings.run_dir / SUPERVISOR_STATE).read_text())
    except (OSError, ValueError):
        return {}
    if read_pid_alive(state.get("pid")):
        return dict(state.get("components", {}))
    return {}


def read_pid_alive(pid: object) -> bool:
    """Whether a process with this id runs."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _supervise(settings: Settings, components: list[Component]) -> int:
    """Run each component as a child; restart one that dies (with backoff), the others keep
    running; SIGINT/SIGTERM stop them all."""
    log = structlog.get_logger("rectrack.supervisor")
    now = time.monotonic()
    children = {c: _Child(c, _start_child(c), now) for c in components}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.restart_at is None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    _write_state(settings, children)
    while not stopping:
        changed = False
        now = time.monotonic()
        for child in children.values():
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started
                child.quick_deaths = 1 if ran >= STABLE_SECONDS else child.quick_deaths + 1
                delay = backoff(child.quick_deaths)
                child.last_exit_code, child.restart_at = code, now + delay
                log.error(
                    "component_exited",
                    component=child.component.value,
                    exit_code=code,
                    ran_seconds=round(ran, 1),
                    restart_in=delay,
                    restarts=child.restarts,
                    crash_looping=child.quick_deaths >= CRASH_LOOP,
                )
                changed = True
            elif now >= child.restart_at:
                child.process, child.started = _start_child(child.component), now
                child.restarts += 1
                child.restart_at = None
                log.warning(
                    "component_restarted",
                    component=child.component.value,
                    pid=child.process.pid,
                    restarts=child.restarts,
                )
                changed = True
        if changed:
            _write_state(settings, children)
        time.sleep(0.2)
    codes = [c.process.wait() for c in children.values() if c.restart_at is None]
    (settings.run_dir / SUPERVISOR_STATE).unlink(missing_ok=True)
    return 0 if not any(c not in (0, -signal.SIGTERM) for c in codes) else 1


def _run_component(settings: Settings, component: Component) -> None:
    # Idempotent set-up, so each component may start alone: as this home's admin, topics and
    # the component's principal; a process given its own principal only checks the topics.
    # Either way a topic it uses that is weaker than the settings (partitions, replication,
    # min.insync.replicas, retention) stops it here with TopicCheckError, naming both.
    if settings.kafka_username is None:
        asyncio.run(prepare_kafka(settings, (component.value,)))
    else:
        asyncio.run(ensure_topics(settings, component_topics(settings, component.value)))
    # From here on every client of this process connects as the component's own principal.
    settings = settings.for_component(component.value)
    # Each component is its own service in the traces (when OTEL_EXPORTER_OTLP_ENDPOINT is
    # set): before the app is built, so the API's FastAPI and the pools see the provider.
    if configure_tracing(component.value):
        structlog.get_logger("rectrack").info("tracing_started", component=component.value)
    if component is Component.api:
        import uvicorn

        from services.web.app import GRACEFUL_SHUTDOWN_SECONDS, create_app

        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            # uvicorn's records go through our logging (infra/logs.py); its access log is
            # replaced by ours, one structured line per request (services/web/access.py).
            log_config=None,
            access_log=False,
            # Open SSE streams never end by themselves: without this SIGTERM waits for them.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        return
    from faust.worker import Worker

    if component is Component.decider:
        from services.decider.agent import build_decider_app

        faust_app = build_decider_app(settings)
    else:
        from projections.recommendations.projection import RECOMMENDATIONS
        from projections.worker import build_projector_app

        faust_app = build_projector_app(settings, RECOMMENDATIONS)
    level = "warn" if settings.log_level == "warning" else settings.log_level
    # No banner (quiet) and Faust keeps our logging: its records, tables included, are
    # rendered by infra/logs.py like every other, so a JSON log stays one object per line.
    worker = Worker(
        faust_app, loglevel=level, quiet=True, redirect_stdouts=False, override_logging=False
    )
    # Faust's progress spinner sets the root logger to DEBUG so that every record turns it;
    # the spinner stops at start-up but the level stays, and every aiokafka send then builds
    # a debug record nobody prints (about 8 % of the decider's time).
    worker.spinner = None
    worker.execute_from_commandline()
