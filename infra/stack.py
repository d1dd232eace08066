"""Bring the broker (or the cluster's nodes) and the database up or down, and say how they
are."""

import asyncio
from dataclasses import dataclass

import structlog

from infra.database import create_pool, migrate
from infra.kafka_broker import LocalKafka
from infra.kafka_security import prepare_kafka
from infra.postgres import LocalPostgres
from infra.processes import port_open
from infra.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `rectrack status`."""

    name: str
    running: bool
    pid: int | None
    address: str
    managed: bool
    # One node of a local Kafka cluster (which has a line per node): its id.
    node_id: int | None = None


def start_infrastructure(settings: Settings) -> list[str]:
    """Start the managed broker and database, create topics, migrate; return what started."""
    settings.home.mkdir(parents=True, exist_ok=True)
    started = []
    if settings.external_database_url is None and LocalPostgres(settings).start():
        started.append("postgres")
    if settings.external_bootstrap is None and LocalKafka(settings).start():
        started.append("kafka")
    asyncio.run(prepare(settings))
    return started


async def prepare(settings: Settings) -> None:
    """Create the app role (local database), topics, the components' Kafka principals and
    their ACLs, and apply migrations (all idempotent)."""
    if settings.external_database_url is None:
        await LocalPostgres(settings).provision()
    await prepare_kafka(settings)
    pool = await create_pool(settings)
    try:
        await migrate(pool)
    finally:
        await pool.close()


def stop_infrastructure(settings: Settings) -> list[str]:
    """Stop what this instance manages; return what was running."""
    stopped = []
    if settings.external_bootstrap is None and LocalKafka(settings).stop():
        stopped.append("kafka")
    if settings.external_database_url is None and LocalPostgres(settings).stop():
        stopped.append("postgres")
    return stopped


def infrastructure_status(settings: Settings) -> list[ServiceStatus]:
    """Broker (or each node of the cluster) and database: running or not, where."""
    kafka, pg = LocalKafka(settings), LocalPostgres(settings)
    return [
        *_kafka_status(settings, kafka),
        ServiceStatus(
            "postgres",
            port_open(settings.pg_port) if settings.external_database_url is None else True,
            pg.pid(),
            settings.database_url_redacted,
            settings.external_database_url is None,
        ),
    ]


def _kafka_status(settings: Settings, kafka: LocalKafka) -> list[ServiceStatus]:
    if settings.external_bootstrap is not None or kafka.single:
        return [
            ServiceStatus(
                "kafka",
                kafka.ready() if settings.external_bootstrap is None else True,
                kafka.pid(),
                settings.bootstrap_servers,
                settings.external_bootstrap is None,
            )
        ]
    return [
        ServiceStatus(
            f"kafka node {node.id}", node.ready(), node.pid(), node.address, True, node.id
        )
        for node in kafka.nodes
    ]


def active_controller(settings: Settings, *, timeout: float = 15.0) -> int | None:
    """The node id of the local cluster's active controller, as the cluster says; None when
    no node answers (or Kafka is not ours). Raises KafkaCredentialsError without the admin's
    password."""
    if settings.external_bootstrap is not None:
        return None
    kafka = LocalKafka(settings)
    try:
        return asyncio.run(asyncio.wait_for(kafka.active_controller(), timeout))
    except TimeoutError:
        return None
