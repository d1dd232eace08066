"""Failures that explain themselves: one line saying what is missing and what to run.

`rectrack` catches what a command raises and, when it is a known condition (a setting to fix,
an option's value that is not what it must be, the stack not running, a database without
tables), prints `error: …` on one line and exits 1, like every refusal a command prints itself.
Anything else is a bug and keeps its traceback; `rectrack --debug …` shows the traceback of
every failure.
"""

import asyncio
import logging
import socket
from urllib.parse import urlsplit

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError

from infra.kafka_clients import KafkaCredentialsError
from infra.settings import DatabaseCredentialsError, Settings, SettingsError
from infra.topic_policy import TopicCheckError


class InvalidOption(Exception):
    """An option's value that cannot be used; the message names the option, the value and why.

    Raised while typer converts the value (services/cli/dates.py). Not a ValueError on purpose:
    typer would turn that into a usage error, a box in its own words, with exit 2.
    """


# Their message already names the file, setting or option to fix and what to do.
SELF_EXPLAINED = (
    SettingsError,
    DatabaseCredentialsError,
    KafkaCredentialsError,
    TopicCheckError,
    InvalidOption,
)
UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    KafkaConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _database_address(settings: Settings) -> tuple[str, int]:
    if settings.external_database_url:
        parts = urlsplit(settings.external_database_url)
        return parts.hostname or "localhost", parts.port or 5432
    return "127.0.0.1", settings.pg_port


def _kafka_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    found = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if host and port.isdigit():
            found.append((host.strip("[]"), int(port)))
    return found


def unreachable(settings: Settings, *, database: bool = True) -> str | None:
    """The first part of the stack that does not answer, and what to run; None if all do
    (`database=False`: Kafka only)."""
    host, port = _database_address(settings)
    if database and not _reachable(host, port):
        if settings.external_database_url:
            return f"cannot reach PostgreSQL at {host}:{port} — check DATABASE_URL"
        return f"cannot reach PostgreSQL at {host}:{port} — run `rectrack up`"
    brokers = _kafka_addresses(settings.bootstrap_servers)
    if brokers and not any(_reachable(h, p) for h, p in brokers):
        where = settings.bootstrap_servers
        if settings.external_bootstrap:
            return f"cannot reach Kafka at {where} — check KAFKA_BOOTSTRAP_SERVERS"
        return f"cannot reach Kafka at {where} — run `rectrack up`"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions)
        current = current.__cause__ or current.__context__
    return seen


def explain(exc: BaseException) -> str | None:
    """One line for a known failure; None for a bug (which keeps its traceback)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, (DatabaseCredentialsError, KafkaCredentialsError)):
            # A home whose stack never ran has no passwords yet: `rectrack up` is the fix.
            down = _stack_down()
            return down or str(e)
        if isinstance(e, SELF_EXPLAINED):
            return str(e)
    for e in chain:
        if isinstance(e, asyncpg.UndefinedTableError):
            return (
                f"the database has no rectrack tables ({e}) — run `rectrack up`, which applies "
                "the migrations"
            )
    if any(isinstance(e, (*UNREACHABLE, KafkaError)) for e in chain):
        said = _stack_down()
        if said is not None:
            return said
        if any(isinstance(e, KafkaConnectionError) for e in chain):
            return f"cannot reach Kafka: {exc}"
    return None


def _stack_down(*, database: bool = True) -> str | None:
    try:
        return unreachable(Settings.from_env(), database=database)
    except SettingsError as bad:
        return str(bad)


def quiet_shutdown() -> None:
    """After a failure, no noise from clients a crashed command left open (asyncio's
    "Unclosed AIOKafkaConsumer" as the interpreter exits)."""
    logging.getLogger("asyncio").disabled = True
    logging.getLogger("aiokafka").disabled = True


def unreachable_kafka_of(bootstrap_servers: str, named_in: str) -> str | None:
    """A client whose brokers a file names (a team system's credentials): one line when none of
    them answers, None when one does. This home's own broker gets this home's advice."""
    brokers = _kafka_addresses(bootstrap_servers)
    if not brokers or any(_reachable(h, p) for h, p in brokers):
        return None
    try:
        settings = Settings.from_env()
    except SettingsError:
        settings = None
    if settings is not None and bootstrap_servers == settings.bootstrap_servers:
        return unreachable(settings, database=False)
    return (
        f"cannot reach Kafka at {bootstrap_servers} (the bootstrap_servers of {named_in}) — "
        "check with whoever runs it that it is up (`rectrack status`), and the address"
    )


def kafka_problem(exc: BaseException) -> str:
    """What a Kafka error means: the stack is down (and what to run), or the error itself."""
    return _stack_down(database=False) or f"Kafka: {exc}"
