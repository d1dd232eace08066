"""Issue 14, part 4: team systems on the real stack, through the CLI as an admin and a team use it.

`rectrack principals create` makes a team's Kafka login and registered signing key and writes
them into one 0600 file; `rectrack send` signs and produces with that file alone, as the team's
principal; a command claiming somebody else is refused; `principals revoke` ends the login and
the key; `principals list` shows both. Each test makes its own inspection, team and principal.
"""

import asyncio
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from events.envelope import Envelope
from events.registry import parse_event
from events.signing import verify_command_signature
from events.streams import key_stream_id
from infra.kafka_broker import LocalKafka
from infra.kafka_clients import read_topic
from infra.kafka_security import list_principals, prepare_kafka
from infra.settings import Settings
from infra.team_credentials import read_credentials_file
from services.decider.gateway import CommandGateway
from services.decider.principals import read_signing_keys
from tests.brokers import tls_broker
from tests.builders import issue, publish, rec_command
from tests.cli import rectrack, start_component
from tests.security.test_signed_commands import who_column
from tests.signing import TeamProducer

pytestmark = pytest.mark.integration

FILE_KEYS = {
    "bootstrap_servers",
    "security_protocol",
    "sasl_mechanism",
    "username",
    "password",
    "key_id",
    "signing_key",
}


class Team:
    """An inspection with one recommendation owned by a team of its own, and that team's
    system (its principal made with `rectrack principals create`)."""

    def __init__(self, env: dict[str, str], folder: Path, role: str = "contributor") -> None:
        suffix = uuid.uuid4().hex[:8]
        self.env = env
        self.insp = publish(f"teams-{suffix}")
        self.rec = issue(self.insp.stream_id, 1)
        self.rec_id = self.rec.stream_id
        self.team = f"tm-{suffix}"  # short: `principals list` fits in 120 columns
        self.name = f"ct-{suffix}"
        self.role = role
        self.file = folder / f"{self.name}.json"
        self.key_id = ""

    async def set_up(self, gateway: CommandGateway) -> "Team":
        owner = rec_command("AssignOwner", self.rec_id, team=self.team, owner_role="lead")
        outcomes = await gateway.submit([self.insp, self.rec, owner], timeout=60)
        assert {o.status for o in outcomes.values()} == {"accepted"}, outcomes
        return self

    def create(self) -> subprocess.CompletedProcess[str]:
        created = self.cli(
            "principals",
            "create",
            "--name",
            self.name,
            "--team",
            self.team,
            "--role",
            self.role,
            "-o",
            str(self.file),
        )
        self.key_id = orjson.loads(self.file.read_bytes())["key_id"]
        return created

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return rectrack(self.env, *args, check=check)

    def send(self, docs: list[dict[str, Any]], *, check: bool = True) -> Any:
        lines = self.file.parent / f"{uuid.uuid4().hex}.ndjson"
        lines.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
        return self.cli(
            "send", str(lines), "--credentials", str(self.file), "--timeout", "60", check=check
        )

    def doc(self, type_: str, data: dict[str, Any], **top: Any) -> dict[str, Any]:
        """A command as the team's system writes it: no actor, a fresh command id."""
        return {
            "type": type_,
            "command_id": str(uuid.uuid4()),
            "effective_date": "2024-07-01",
            "data": {"recommendation_id": self.rec_id, **data},
            **top,
        }

    def progress(self, position: str = "Training delivered") -> dict[str, Any]:
        return self.doc("ReportProgress", {"position": position, "delivery_status": "on_track"})


@pytest.fixture
async def team(
    stack: Settings, gateway: CommandGateway, run_env: dict[str, str], tmp_path: Path
) -> Team:
    return await Team(run_env, tmp_path).set_up(gateway)


async def events_of(settings: Settings, stream_id: str) -> list[Envelope]:
    key = stream_id.split("/", 1)[0].encode()
    return [
        e
        for r in await read_topic(settings, settings.topics.events, keep=lambda r: r.key == key)
        if (e := parse_event(r.value or b"")).stream_id == stream_id
    ]


def outcome_lines(output: str) -> dict[str, str]:
    """`rectrack send`'s lines by command id: what follows the id."""
    found = {}
    for line in output.splitlines():
        if line.startswith("line "):
            _, _, rest = line.partition(": ")
            command_id, _, said = rest.partition(" ")
            found[command_id] = said
    return found


async def test_create_writes_one_private_file_and_list_shows_the_principal_and_its_key(
    stack: Settings, team: Team
) -> None:
    created = team.create()
    assert stat.S_IMODE(team.file.stat().st_mode) == 0o600
    doc = orjson.loads(team.file.read_bytes())
    assert set(doc) == FILE_KEYS  # the session's broker has no TLS: no ssl_cafile
    assert doc["username"] == team.name and doc["security_protocol"] == "SASL_PLAINTEXT"
    assert doc["bootstrap_servers"] == stack.bootstrap_servers
    assert team.key_id in created.stdout and team.name in created.stdout
    for secret in (doc["password"], doc["signing_key"], "PRIVATE KEY"):
        assert secret not in created.stdout + created.stderr

    # The key is in the log, registered to the principal by the CLI's admin, and verifies
    # against the file's private key.
    (registration,) = await events_of(stack, key_stream_id(team.key_id))
    registered = registration.data.model_dump()
    assert registered["principal"] == {"name": team.name, "team": team.team, "role": "contributor"}
    assert registered["kind"] == "team" and registration.actor.role == "admin"
    assert read_credentials_file(team.file).key_id == team.key_id
    assert team.name in {p.name for p in await list_principals(stack) if p.kind == "team"}

    listed = team.cli("principals", "list").stdout
    assert any(
        line.startswith(f"│ {team.name} ") and "│ team " in line for line in listed.splitlines()
    ), listed
    (key_row,) = [line for line in listed.splitlines() if team.key_id in line]
    cells = [c.strip() for c in key_row.strip("│ ").split("│")]
    assert cells[:4] == [team.name, team.key_id, team.team, "contributor"]
    assert cells[5] == "-"  # not revoked

    # Never over an existing file, and nothing is made then; a name that is no slug is refused.
    before = team.file.read_bytes()
    again = team.cli(
        "principals",
        "create",
        "--name",
        f"{team.name}-2",
        "--team",
        team.team,
        "--role",
        "contributor",
        "-o",
        str(team.file),
        check=False,
    )
    assert again.returncode == 1 and "exists already" in again.stderr
    assert team.file.read_bytes() == before
    assert f"{team.name}-2" not in {p.name for p in await list_principals(stack)}
    bad = team.cli(
        "principals",
        "create",
        "--name",
        "Case Tool",
        "--team",
        team.team,
        "--role",
        "contributor",
        "-o",
        str(team.file.with_name("bad.json")),
        check=False,
    )
    assert bad.returncode == 1 and "--name:" in bad.stderr
    assert not team.file.with_name("bad.json").exists()


async def test_a_signed_command_sent_as_the_team_is_accepted_verifies_and_shows_who(
    stack: Settings, team: Team
) -> None:
    team.create()
    doc = team.progress("Café staff trained")
    sent = team.send([doc])
    assert outcome_lines(sent.stdout) == {doc["command_id"]: "accepted"}, sent.stdout

    (event,) = [
        e for e in await events_of(stack, team.rec_id) if str(e.command_id) == doc["command_id"]
    ]
    assert event.type == "ProgressReported"
    assert event.actor.model_dump() == {"name": team.name, "team": team.team, "role": "contributor"}
    signature = event.command_signature
    assert signature is not None and signature.key_id == team.key_id
    assert orjson.loads(signature.payload) == doc  # the line, as the team wrote it
    # Checked with the public key the log registered, not with anything of the test's.
    (registration,) = await events_of(stack, key_stream_id(team.key_id))
    public_key = registration.data.model_dump()["public_key"]
    assert verify_command_signature(signature, public_key)
    forged = signature.model_copy(update={"payload": signature.payload.replace("Café", "Cafe")})
    assert not verify_command_signature(forged, public_key)

    history = orjson.loads(team.cli("history", team.rec_id, "--format", "json").stdout)
    (entry,) = [h for h in history if h["type"] == "ProgressReported"]
    assert entry["actor"] == {"name": team.name, "team": team.team, "role": "contributor"}
    assert entry["loaded_by"] is None
    table = team.cli("history", team.rec_id).stdout
    assert f"{team.name} ({team.team}, contributor)" in who_column(table)


async def test_a_command_claiming_the_inspector_closes_nothing(
    stack: Settings, gateway: CommandGateway, team: Team
) -> None:
    team.create()
    inspector = {"name": team.name, "team": "hmics", "role": "inspector"}
    evidence = team.doc("SubmitEvidence", {"evidence_id": "e1", "summary": "Done"})
    proposal = team.doc("ProposeClosure", {"rationale": "Done", "evidence_ids": ["e1"]})
    claims = [
        team.doc(
            "RecordInspectorateDecision",
            {"decision": "closed", "rationale": "Met"},
            actor=inspector,
        ),
        team.doc("RecordInspectorateDecision", {"decision": "closed", "rationale": "Met"}),
    ]
    sent = team.send([evidence, proposal, *claims], check=False)
    assert sent.returncode == 1, sent.stdout + sent.stderr
    said = outcome_lines(sent.stdout)
    assert said[evidence["command_id"]] == "accepted" and said[proposal["command_id"]] == "accepted"
    assert said[claims[0]["command_id"]].startswith("rejected actor_mismatch: ")
    assert said[claims[1]["command_id"]].startswith("rejected forbidden: ")  # its own role
    assert "2 accepted, 2 rejected" in sent.stdout
    types = [e.type for e in await events_of(stack, team.rec_id)]
    assert "InspectorateDecisionRecorded" not in types
    assert types[-2:] == ["EvidenceSubmitted", "ClosureProposed"]


async def test_bad_lines_are_named_and_not_sent(stack: Settings, team: Team) -> None:
    team.create()
    good = team.progress()
    lines = team.file.parent / "mixed.ndjson"
    missing = {"type": "ReportProgress", "data": {"recommendation_id": team.rec_id}}
    lines.write_bytes(orjson.dumps(good) + b"\n\n" + orjson.dumps(missing) + b"\n{not json\n")
    sent = team.cli("send", str(lines), "--credentials", str(team.file), check=False)
    assert sent.returncode == 1
    assert "error: line 3: data.position: Field required; data.delivery_status:" in sent.stderr
    assert "line 4: (command): not JSON" in sent.stderr
    assert outcome_lines(sent.stdout) == {good["command_id"]: "accepted"}
    assert "1 sent: 1 accepted" in sent.stdout and "2 bad line(s) not sent" in sent.stdout
    assert [e.type for e in await events_of(stack, team.rec_id)][-1] == "ProgressReported"
    assert (
        len([e for e in await events_of(stack, team.rec_id) if e.type == "ProgressReported"]) == 1
    )


async def produce_as(options: dict[str, Any], topic: str) -> None:
    producer = AIOKafkaProducer(**options, acks="all", request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(producer.send_and_wait(topic, b"probe"), 20)
    finally:
        await producer.stop()


async def test_after_revoking_the_principal_its_login_and_its_key_are_refused(
    stack: Settings, gateway: CommandGateway, team: Team
) -> None:
    team.create()
    first = team.progress("Before")
    assert outcome_lines(team.send([first]).stdout) == {first["command_id"]: "accepted"}
    credentials = read_credentials_file(team.file)

    revoked = team.cli("principals", "revoke", team.name, "--reason", "the laptop was stolen")
    assert f"principal {team.name}: Kafka login and ACLs removed" in revoked.stdout
    assert f"key {team.key_id} revoked" in revoked.stdout

    # The login: `rectrack send` cannot connect, nor can any client with the password.
    refused = team.send([team.progress("After, as the team")], check=False)
    assert refused.returncode == 1 and f"Kafka, as {team.name}: " in refused.stderr
    assert "Unclosed" not in refused.stderr  # the refused clients are closed
    with pytest.raises(KafkaConnectionError):
        await produce_as(credentials.kafka.client_options(), stack.topics.commands)
    # The key: signed with it, produced through another login, refused as unauthenticated.
    after = team.progress("After, through another login")
    async with TeamProducer(stack, credentials.signer()) as other_login:
        await other_login.send(team.rec_id, after)
    outcomes = await gateway.wait_for([uuid.UUID(after["command_id"])], timeout=60)
    assert outcomes[uuid.UUID(after["command_id"])].reason == "unauthenticated"
    positions = [
        e.data.model_dump()["position"]
        for e in await events_of(stack, team.rec_id)
        if e.type == "ProgressReported"
    ]
    assert positions == ["Before"]

    key_events = await events_of(stack, key_stream_id(team.key_id))
    assert [e.type for e in key_events] == ["SigningKeyRegistered", "SigningKeyRevoked"]
    assert key_events[1].data.model_dump()["reason"] == "the laptop was stolen"
    listed = team.cli("principals", "list").stdout
    (key_row,) = [line for line in listed.splitlines() if team.key_id in line]
    cells = [c.strip() for c in key_row.strip("│ ").split("│")]
    assert cells[0] == team.name and cells[5] != "-"  # revoked, and when
    assert not any(
        line.startswith(f"│ {team.name} ") and "│ team " in line for line in listed.splitlines()
    )

    again = team.cli("principals", "revoke", team.name, check=False)
    assert again.returncode == 1 and "no principal and no live signing key" in again.stderr


async def test_revoking_a_key_alone_keeps_the_login_and_refuses_the_key(
    stack: Settings, team: Team
) -> None:
    team.create()
    revoked = team.cli("principals", "revoke", team.key_id)
    assert revoked.stdout.strip() == f"key {team.key_id} revoked"
    doc = team.progress("Signed with a revoked key")
    sent = team.send([doc], check=False)  # it still logs in; the decider refuses the key
    assert sent.returncode == 1
    assert outcome_lines(sent.stdout)[doc["command_id"]].startswith("rejected unauthenticated: ")
    assert team.name in {p.name for p in await list_principals(stack)}
    assert "ProgressReported" not in [e.type for e in await events_of(stack, team.rec_id)]
    again = team.cli("principals", "revoke", team.key_id, check=False)
    assert again.returncode == 1 and "revoked already" in again.stderr


async def test_unknown_ids_and_the_stack_s_own_keys_are_refused(
    stack: Settings, team: Team
) -> None:
    for unknown in ("nobody-" + uuid.uuid4().hex[:8], uuid.uuid4().hex, "Not A Name"):
        refused = team.cli("principals", "revoke", unknown, check=False)
        assert refused.returncode == 1 and "no principal and no" in refused.stderr, unknown
    gateway_key = next(k for k in (await read_signing_keys(stack)).values() if k.kind == "gateway")
    refused = team.cli("principals", "revoke", gateway_key.key_id, check=False)
    assert refused.returncode == 1 and "not a team's" in refused.stderr
    assert not (await read_signing_keys(stack))[gateway_key.key_id].revoked


async def test_a_registration_without_an_outcome_leaves_nothing_behind(
    stack: Settings, team: Team
) -> None:
    failed = team.cli(
        "principals",
        "create",
        "--name",
        team.name,
        "--team",
        team.team,
        "--role",
        "contributor",
        "-o",
        str(team.file),
        "--timeout",
        "0",
        check=False,
    )
    assert failed.returncode == 1 and "was not accepted (no outcome in time" in failed.stderr
    assert not team.file.exists()
    assert team.name not in {p.name for p in await list_principals(stack)}
    # The registration is decided later all the same, and revoked right after it.
    key_id = failed.stderr.split("registration of key ")[1].split()[0]
    for _ in range(60):
        key = (await read_signing_keys(stack)).get(key_id)
        if key is not None and key.revoked:
            break
        await asyncio.sleep(1)
    assert key is not None and key.revoked and key.principal.name == team.name


@pytest.fixture(scope="module")
def tls_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A broker of its own with TLS on (SASL_SSL), and nothing else."""
    with tls_broker(tmp_path_factory.mktemp("teams-tls-home"), "teams-tls") as env:
        yield env


async def test_with_tls_the_file_names_the_ca_and_send_connects_with_it(
    tls_env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_env(tls_env)
    await prepare_kafka(settings)
    decider = start_component(tls_env, "decider")
    try:
        team = Team(tls_env, tmp_path, role="inspector")
        team.create()
        doc = orjson.loads(team.file.read_bytes())
        assert set(doc) == FILE_KEYS | {"ssl_cafile"}
        assert doc["security_protocol"] == "SASL_SSL"
        assert doc["ssl_cafile"] == str(LocalKafka(settings).tls.ca_cert)
        published = {
            "type": "PublishInspection",
            "command_id": str(uuid.uuid4()),
            "effective_date": "2024-01-10",
            "data": {
                "inspection_id": team.insp.stream_id,
                "title": "Published by a team system over TLS",
                "inspectorate": "HMICS",
                "published_on": "2024-01-10",
            },
        }
        sent = team.send([published])
        assert outcome_lines(sent.stdout) == {published["command_id"]: "accepted"}
        (event,) = await events_of(settings, team.insp.stream_id)
        assert event.actor.model_dump() == {
            "name": team.name,
            "team": team.team,
            "role": "inspector",
        }
    finally:
        decider.terminate()
        decider.wait(timeout=30)
