"""Issue 14, part 1: nobody reaches Kafka anonymously, and every principal does only its job.

Before, the broker had PLAINTEXT listeners and no authorizer: any client on the network could
read every topic and write commands, events and outcomes. Now the client listener takes
SASL/SCRAM only, KRaft's StandardAuthorizer denies what no ACL allows, and each principal
(a component, a team, a subscriber) is granted exactly its part. Each test runs on topics of
its own (a prefix of its own on the session's broker) so probe records disturb nobody.
"""

import asyncio
import dataclasses
import json
import ssl
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from infra.kafka_broker import LocalKafka
from infra.kafka_clients import (
    KafkaCredentialsError,
    admin_client,
    connection_options,
    ensure_topics,
)
from infra.kafka_security import (
    KafkaAdminError,
    PrincipalKind,
    component_credentials,
    create_principal,
    list_principals,
    prepare_kafka,
    revoke_principal,
    send,
)
from infra.kafka_wire import DeleteAcls
from infra.private_files import write_private
from infra.settings import Settings
from services.decider.gateway import CommandGateway
from tests.brokers import tls_broker
from tests.builders import publish
from tests.cli import rectrack, start_component

pytestmark = pytest.mark.integration

# What a refusal may look like: the broker closes an unauthenticated connection (no
# bootstrap), or answers a request with an authorization error.
DENIED = (
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


@pytest.fixture
async def own(settings: Settings) -> AsyncIterator[Settings]:
    """Topics and component principals of this test's own, on the session's broker."""
    mine = dataclasses.replace(settings, topic_prefix=f"acl-{uuid.uuid4().hex[:8]}.")
    await prepare_kafka(mine)
    yield mine


def name(kind: str) -> str:
    """A principal name no other test uses."""
    return f"{kind}-{uuid.uuid4().hex[:8]}"


async def produce(options: dict[str, Any], topic: str) -> None:
    """Send one record and wait for its acknowledgement."""
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(producer.send_and_wait(topic, b"probe", key=b"probe"), 20)
    finally:
        await producer.stop()


async def consume(options: dict[str, Any], topic: str, group: str) -> list[bytes]:
    """Join `group`, and return what the topic holds (waiting for at least one record)."""
    consumer = AIOKafkaConsumer(
        topic, **options, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        await asyncio.wait_for(consumer.start(), 20)
        for _ in range(20):
            batches = await consumer.getmany(timeout_ms=1000)
            values = [r.value or b"" for records in batches.values() for r in records]
            if values:
                return values
        return []
    finally:
        await consumer.stop()


async def is_refused(attempt: Any) -> bool:
    """Whether the broker turned the attempt away (and did not merely time out)."""
    try:
        await attempt
    except (*DENIED, KafkaCredentialsError):
        return True
    return False


def options_without_sasl(settings: Settings) -> dict[str, Any]:
    """A client that knows the address and nothing else, as an attacker's kcat would."""
    return {"bootstrap_servers": settings.bootstrap_servers, "request_timeout_ms": 5000}


async def test_an_anonymous_client_can_neither_produce_nor_consume(own: Settings) -> None:
    admin = connection_options(own)
    await produce(admin, own.topics.events)  # there is something to read
    anonymous = options_without_sasl(own)
    assert await is_refused(produce(anonymous, own.topics.commands))
    assert await is_refused(produce(anonymous, own.topics.events))
    assert await is_refused(consume(anonymous, own.topics.events, "anyone"))
    assert await consume(admin, own.topics.events, "admin-check") == [b"probe"]


async def test_a_wrong_password_is_refused_and_the_broker_logs_it(own: Settings) -> None:
    team = await create_principal(own, name("team"), PrincipalKind.team)
    wrong = dataclasses.replace(team, password=team.password[:-2] + "xx")
    assert await is_refused(produce(wrong.client_options(), own.topics.commands))
    await produce(team.client_options(), own.topics.commands)  # the right one gets in
    log = (own.log_dir / "kafka.log").read_text()
    assert "Failed authentication" in log and "invalid credentials" in log
    assert team.password not in log and wrong.password not in log


async def test_a_team_writes_commands_and_reads_outcomes_and_nothing_else(own: Settings) -> None:
    team_name = name("team")
    team = await create_principal(own, team_name, PrincipalKind.team)
    admin, as_team = connection_options(own), team.client_options()
    for topic in own.topics.all():
        await produce(admin, topic)

    await produce(as_team, own.topics.commands)
    assert await consume(as_team, own.topics.outcomes, f"{team_name}.outcomes") == [b"probe"]

    assert await is_refused(produce(as_team, own.topics.events)), "a team wrote an event"
    assert await is_refused(produce(as_team, own.topics.outcomes)), "a team wrote an outcome"
    assert await is_refused(produce(as_team, own.topics.dead_letters))
    assert await is_refused(consume(as_team, own.topics.events, f"{team_name}.events"))
    assert await is_refused(consume(as_team, own.topics.commands, f"{team_name}.commands"))
    # Another principal's consumer group (or one named after nobody) is not the team's.
    assert await is_refused(consume(as_team, own.topics.outcomes, f"{name('team')}.x"))
    assert await is_refused(consume(as_team, own.topics.outcomes, team_name))


async def test_a_subscriber_reads_events_in_its_own_groups_and_writes_nothing(
    own: Settings,
) -> None:
    subscriber_name, other = name("sub"), name("sub")
    subscriber = await create_principal(own, subscriber_name, PrincipalKind.subscriber)
    await create_principal(own, other, PrincipalKind.subscriber)
    await produce(connection_options(own), own.topics.events)
    as_subscriber = subscriber.client_options()

    assert await consume(as_subscriber, own.topics.events, f"{subscriber_name}.feed") == [b"probe"]
    assert await is_refused(consume(as_subscriber, own.topics.events, f"{other}.feed"))
    assert await is_refused(consume(as_subscriber, own.topics.outcomes, f"{subscriber_name}.o"))
    for topic in own.topics.all():
        assert await is_refused(produce(as_subscriber, topic)), f"a subscriber wrote {topic}"


async def test_only_the_decider_may_write_events_and_outcomes(own: Settings) -> None:
    api, projector, decider = (
        component_credentials(own, c) for c in ("api", "projector", "decider")
    )
    for topic in (own.topics.events, own.topics.outcomes, own.topics.dead_letters):
        assert await is_refused(produce(api.client_options(), topic)), f"the API wrote {topic}"
        assert await is_refused(produce(projector.client_options(), topic))
        await produce(decider.client_options(), topic)
    await produce(api.client_options(), own.topics.commands)
    assert await is_refused(produce(projector.client_options(), own.topics.commands))
    # The API reads events (feed) and outcomes (gateway), never the commands of others.
    assert await is_refused(consume(api.client_options(), own.topics.commands, "x"))


async def test_a_revoked_principal_is_refused_and_no_longer_listed(own: Settings) -> None:
    team_name = name("team")
    team = await create_principal(own, team_name, PrincipalKind.team)
    subscriber_name = name("sub")
    await create_principal(own, subscriber_name, PrincipalKind.subscriber)
    listed = {p.name: p.kind for p in await list_principals(own)}
    assert listed[team_name] == "team" and listed[subscriber_name] == "subscriber"
    assert listed[own.component_principal("decider")] == "decider"
    assert listed["rectrack-admin"] == "admin"

    # A connection open before the revocation loses its rights on its next request.
    producer = AIOKafkaProducer(**team.client_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(own.topics.commands, b"before")
        assert await revoke_principal(own, team_name)
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(own.topics.commands, b"after")
    finally:
        await producer.stop()
    assert await is_refused(produce(team.client_options(), own.topics.commands))
    assert team_name not in {p.name for p in await list_principals(own)}
    assert not await revoke_principal(own, team_name)  # revoking twice changes nothing


async def test_no_principal_takes_the_apps_name_or_an_existing_one(own: Settings) -> None:
    for bad in ("rectrack-decider", "Team A", "team.a", "", "-x", "a" * 64):
        with pytest.raises(ValueError):
            await create_principal(own, bad, PrincipalKind.team)
    taken = name("team")
    first = await create_principal(own, taken, PrincipalKind.team)
    with pytest.raises(KafkaAdminError, match="exists already"):
        await create_principal(own, taken, PrincipalKind.subscriber)
    await produce(first.client_options(), own.topics.commands)  # the first holder keeps it


async def test_a_running_decider_acts_as_its_own_principal(
    own: Settings, run_env: dict[str, str]
) -> None:
    """Taking the decider principal's ACLs away stops the running decider: an admin (super
    user) would not have noticed."""
    env = {**run_env, "RECTRACK_TOPIC_PREFIX": own.topic_prefix, "RECTRACK_LOG_LEVEL": "warning"}
    decider = start_component(env, "decider")
    gateway = CommandGateway(own.for_component("api"))
    await gateway.start()
    try:
        first = publish()
        assert (await gateway.submit([first], timeout=90))[first.command_id].status == "accepted"
        principal = f"User:{own.component_principal('decider')}"
        admin = admin_client(own)
        await admin.start()
        try:
            await send(admin, DeleteAcls([(1, None, 1, principal, None, 1, 1)]))
        finally:
            await admin.close()
        second = publish()
        await gateway.send([second])
        await asyncio.sleep(8)
        assert not gateway.outcomes.known([second.command_id]), (
            "the decider decided without its ACLs: it is not running as its own principal"
        )
    finally:
        await gateway.stop()
        decider.kill()
        decider.wait()


def _secrets(settings: Settings) -> dict[str, str]:
    return {
        path.name: path.read_text().strip()
        for path in settings.kafka_credentials_dir.iterdir()
        if path.suffix == ".password"
    }


def test_credentials_are_private_files_and_appear_in_no_log_status_or_ps(
    stack: Settings, run_env: dict[str, str]
) -> None:
    kafka = LocalKafka(stack)
    secrets = _secrets(stack)
    expected = {"rectrack-admin", "rectrack-broker"} | {
        stack.component_principal(c) for c in ("api", "decider", "projector")
    }
    assert {f"{n}.password" for n in expected} <= set(secrets)
    assert all(len(s) >= 40 for s in secrets.values())
    private = [*stack.kafka_credentials_dir.iterdir(), kafka.dir / "server.properties"]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is not mode 0600"
    assert stat.S_IMODE(stack.kafka_credentials_dir.stat().st_mode) == 0o700

    status = rectrack(run_env, "status", check=False).stdout  # what it says, ready or not
    assert f"SASL_PLAINTEXT {stack.kafka_sasl_mechanism} as rectrack-admin" in status

    # The broker, PostgreSQL, the stack's processes and this one: no password on a command line.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        leaked = [n for n, s in secrets.items() if s in words]
        assert not leaked, f"{leaked} on the command line of pid {cmdline.parent.name}"
    # Every log the instance wrote, and the status output.
    logs = [p for p in stack.log_dir.rglob("*") if p.is_file()]
    assert any(p.name == "kafka.log" for p in logs) and any(p.name == "stack.log" for p in logs)
    for text, where in [
        (status, "rectrack status"),
        *((p.read_text(errors="replace"), str(p)) for p in logs),
    ]:
        leaked = [n for n, s in secrets.items() if s in text]
        assert not leaked, f"the password of {leaked} is in {where}"


@pytest.fixture(scope="module")
def tls_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A broker of its own with TLS on (SASL_SSL), and nothing else."""
    with tls_broker(tmp_path_factory.mktemp("tls-home"), "tls") as env:
        yield env


async def test_with_tls_the_decider_works_and_plain_or_unverified_clients_are_refused(
    tls_env: dict[str, str],
) -> None:
    settings = Settings.from_env(tls_env)
    assert settings.kafka_security_protocol == "SASL_SSL"
    await prepare_kafka(settings)
    tls = LocalKafka(settings).tls
    for path in (tls.ca_key, tls.keystore, tls.keystore_password_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is not mode 0600"

    team = await create_principal(settings, name("team"), PrincipalKind.team)
    assert team.ssl_cafile == str(tls.ca_cert)
    await produce(team.client_options(), settings.topics.commands)
    # SASL without TLS, and TLS that trusts only the system's CAs, are both turned away.
    in_clear = {**team.client_options(), "security_protocol": "SASL_PLAINTEXT"}
    del in_clear["ssl_context"]
    assert await is_refused(produce(in_clear, settings.topics.commands))
    unverified = {**team.client_options(), "ssl_context": ssl.create_default_context()}
    assert await is_refused(produce(unverified, settings.topics.commands))

    # Faust and the decider's own clients connect over TLS as the decider's principal.
    decider = start_component(tls_env, "decider")
    gateway = CommandGateway(settings.for_component("api"))
    await gateway.start()
    try:
        command = publish()
        outcome = (await gateway.submit([command], timeout=90))[command.command_id]
        assert outcome.status == "accepted", outcome
    finally:
        await gateway.stop()
        decider.terminate()
        decider.wait(timeout=30)


def test_rectrack_load_sends_as_the_apis_principal(
    stack: Settings, run_env: dict[str, str], tmp_path: Path
) -> None:
    line = {
        "type": "PublishInspection",
        "command_id": str(uuid.uuid4()),
        "effective_date": "2024-01-10",
        "actor": {"name": "Loader Test", "team": "hmics", "role": "inspector"},
        "data": {
            "inspection_id": f"insp-{uuid.uuid4().hex[:10]}",
            "title": "Loaded as the API",
            "inspectorate": "HMICS",
            "published_on": "2024-01-10",
        },
    }
    file = tmp_path / "one.ndjson"
    file.write_text(json.dumps(line) + "\n")
    summary = json.loads(rectrack(run_env, "load", str(file), "--json").stdout)
    assert (summary["accepted"], summary["rejected"]) == (1, 0), summary
    # Without the API principal's password the loader cannot connect, admin's or not.
    api_password = stack.kafka_password_path_of(stack.component_principal("api"))
    kept = api_password.read_bytes()
    api_password.unlink()
    try:
        refused = rectrack(run_env, "load", str(file), "--json", "--timeout", "5", check=False)
    finally:
        write_private(api_password, kept)
    assert refused.returncode != 0
    assert f"cannot read the Kafka password in {api_password}" in refused.stderr


async def test_a_lost_admin_password_is_replaced_by_the_next_up(tls_env: dict[str, str]) -> None:
    """Only the owner of RECTRACK_HOME can do it: the broker's own password (in its 0600
    config) lets `rectrack up` set a new admin credential through the controller listener."""
    settings = Settings.from_env(tls_env)
    kafka = LocalKafka(settings)
    old = kafka.admin_password_file.read_text()
    kafka.admin_password_file.unlink()
    assert await is_refused(ensure_topics(settings))  # no password file: nothing to log in with
    assert not await asyncio.to_thread(kafka.start)  # already running: it only repairs
    assert kafka.admin_password_file.read_text() != old
    await ensure_topics(settings)
    stale = {**connection_options(settings), "sasl_plain_password": old.strip()}
    assert await is_refused(produce(stale, settings.topics.commands))
