"""Team systems without a broker: the credentials file, `send`'s line parser and outcome
matching, the key registry fold, the principal's fields, and the README's signing example."""

import base64
import os
import re
import shutil
import stat
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from events.ed25519 import encode_public_key, key_id_of
from events.envelope import Actor, Envelope
from events.keys import SigningKeyRegistered, SigningKeyRevoked
from events.outcome import Outcome, Principal
from events.signing import Signer, parse_signed_command
from events.streams import partition_key
from infra.kafka_security import KafkaCredentials
from infra.team_credentials import (
    CredentialsFileError,
    TeamCredentials,
    read_credentials_file,
    signing_key_pem,
    write_credentials_file,
)
from services.decider.principals import InvalidFields, fold_signing_keys, team_principal
from services.decider.team_client import (
    BadLine,
    Outgoing,
    answers,
    parse_send_line,
    read_send_file,
)

README = Path(__file__).resolve().parents[2] / "README.md"
FILE_KEYS = {
    "bootstrap_servers",
    "security_protocol",
    "sasl_mechanism",
    "username",
    "password",
    "key_id",
    "signing_key",
}
PASSWORD = "not-a-real-password-0123456789abcdef"


def credentials(cafile: str | None = None) -> TeamCredentials:
    kafka = KafkaCredentials(
        bootstrap_servers="localhost:9092",
        security_protocol="SASL_SSL" if cafile else "SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        username="case-tool",
        password=PASSWORD,
        ssl_cafile=cafile,
    )
    return TeamCredentials(kafka, Ed25519PrivateKey.generate())


# --- The credentials file


def test_the_file_is_0600_with_exactly_its_keys_and_reads_back(tmp_path: Path) -> None:
    made = credentials()
    path = tmp_path / "team.json"
    write_credentials_file(path, made)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = orjson.loads(path.read_bytes())
    assert set(doc) == FILE_KEYS  # no ssl_cafile without TLS
    assert all(isinstance(v, str) for v in doc.values())
    assert doc["signing_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert doc["key_id"] == key_id_of(made.signing_key.public_key().public_bytes_raw())
    read = read_credentials_file(path)
    assert read.kafka == made.kafka and read.key_id == made.key_id
    assert read.signer().sign(b"{}") == made.signer().sign(b"{}")  # the same private key


def test_with_tls_the_file_names_the_ca(tmp_path: Path) -> None:
    path = tmp_path / "team.json"
    write_credentials_file(path, credentials(cafile="/srv/kafka/ca.pem"))
    doc = orjson.loads(path.read_bytes())
    assert set(doc) == FILE_KEYS | {"ssl_cafile"} and doc["ssl_cafile"] == "/srv/kafka/ca.pem"
    assert read_credentials_file(path).kafka.ssl_cafile == "/srv/kafka/ca.pem"


def test_an_existing_file_or_link_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "team.json"
    path.write_text("someone's")
    with pytest.raises(FileExistsError):
        write_credentials_file(path, credentials())
    assert path.read_text() == "someone's"
    dangling = tmp_path / "link.json"
    dangling.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(FileExistsError):
        write_credentials_file(dangling, credentials())
    assert not (tmp_path / "elsewhere.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "team.json"]


def _written(tmp_path: Path, **changes: Any) -> Path:
    doc = {**credentials().as_dict(), **changes}
    doc = {k: v for k, v in doc.items() if v is not None}
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_bytes(orjson.dumps(doc))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"password": None}, "password must be a non-empty string"),
        ({"username": 7}, "username must be a non-empty string"),
        ({"extra": "x"}, "unknown field(s) extra"),
        ({"key_id": "ABC"}, "key_id must be 32 lower-case hex characters"),
        ({"key_id": "0" * 32}, "is not the id of signing_key"),
        ({"signing_key": "not a key"}, "signing_key holds no unencrypted PEM private key"),
        (
            {
                "signing_key": generate_private_key(SECP256R1())
                .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
                .decode()
            },
            "signing_key is not an Ed25519 private key",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_field_and_no_secret(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    path = _written(tmp_path, **changes)
    with pytest.raises(CredentialsFileError) as refused:
        read_credentials_file(path)
    assert named in str(refused.value) and str(path) in str(refused.value)
    assert PASSWORD not in str(refused.value) and "PRIVATE KEY" not in str(refused.value)


def test_a_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "team.json"
    write_credentials_file(path, credentials())
    path.chmod(0o640)
    with pytest.raises(CredentialsFileError, match="readable by other users"):
        read_credentials_file(path)
    with pytest.raises(CredentialsFileError, match="cannot read"):
        read_credentials_file(tmp_path / "missing.json")


def test_no_repr_shows_the_password_or_the_key() -> None:
    made = credentials()
    assert PASSWORD not in repr(made)
    assert signing_key_pem(made.signing_key) not in repr(made)


def test_openssl_signs_with_the_file_s_key_exactly_as_rectrack_does(tmp_path: Path) -> None:
    """The README's recipe: the PEM out of the file, `openssl pkeyutl -sign -rawin`."""
    assert shutil.which("openssl"), "the README recipe signs with the openssl command"
    made = credentials()
    path = tmp_path / "team.json"
    write_credentials_file(path, made)
    pem = tmp_path / "key.pem"
    pem.write_text(orjson.loads(path.read_bytes())["signing_key"])
    payload = tmp_path / "payload.json"
    payload.write_bytes('{"type":"SubmitEvidence","data":{"summary":"Café"}}'.encode())
    signed = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(pem), "-in", str(payload)],
        capture_output=True,
        check=True,
    ).stdout
    wire = orjson.loads(made.signer().sign(payload.read_bytes()))
    assert base64.b64encode(signed).decode() == wire["signature"]  # Ed25519 is deterministic


def test_the_readme_s_worked_example_is_what_rectrack_signs() -> None:
    text = README.read_text()
    section = text[text.index("**What is signed.**") :]
    start = section.index("```text\n") + len("```text\n")
    example = section[start : section.index("```", start)].splitlines()
    pem = "".join(line.removeprefix("signing_key:").strip() + "\n" for line in example[:3])
    key = load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey) and signing_key_pem(key) == pem
    fields = dict(re.findall(r"^([a-z_ ]+):\s+(.*)$", "\n".join(example[3:]), re.MULTILINE))
    signer = Signer(key)
    assert fields["public key"].split()[0] == encode_public_key(signer.public_key)
    assert fields["key_id"] == signer.key_id
    payload = fields["payload"].encode("utf-8")
    assert f"payload's {len(payload)} bytes" in fields["signed bytes"]
    assert f"({len(fields['payload'])} characters" in fields["signed bytes"]
    assert fields["record value"].encode() == signer.sign(payload)
    assert parse_signed_command(fields["record value"].encode()).payload == fields["payload"]
    assert (
        fields["record key"]
        == partition_key(orjson.loads(payload)["data"]["recommendation_id"]).decode()
    )


# --- `rectrack send`: lines


REC = "insp-2024-01/r1"


def progress_line(**top: Any) -> dict[str, Any]:
    return {
        "type": "ReportProgress",
        "data": {"recommendation_id": REC, "position": "Trained", "delivery_status": "on_track"},
        **top,
    }


def test_a_line_is_sent_as_written_and_keyed_by_its_stream() -> None:
    command_id = str(uuid.uuid4())
    text = (
        ' {"command_id": "' + command_id + '",  "type":"ReportProgress", "data":'
        '{"recommendation_id":"' + REC + '","position":"Café", "delivery_status":"on_track"}}\n'
    )
    sent = parse_send_line(3, text.encode())
    assert sent.payload == text.strip().encode()  # its bytes, spacing and all: not re-written
    assert (sent.line, str(sent.command_id), sent.stream_id) == (3, command_id, REC)
    assert re.fullmatch(r"[0-9a-f]{64}", sent.digest)


def test_a_line_without_a_command_id_is_given_one() -> None:
    sent = parse_send_line(1, orjson.dumps(progress_line()))
    doc = orjson.loads(sent.payload)
    assert doc["command_id"] == str(sent.command_id) and "actor" not in doc


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (b"not json", "(command)", "not JSON"),
        (b"[1, 2]", "(command)", "must be a JSON object"),
        (orjson.dumps({"type": "Nope", "data": {}}), "type", "unknown command type"),
        (
            orjson.dumps({"type": "ReportProgress", "data": {"recommendation_id": REC}}),
            "data.position",
            "Field required",
        ),
        (
            orjson.dumps(progress_line(actor={"name": "x", "team": "y", "role": "boss"})),
            "actor.role",
            "",
        ),
        (
            orjson.dumps(progress_line(loaded_by={"name": "x", "team": "y", "role": "admin"})),
            "loaded_by",
            "leave loaded_by out",
        ),
        (b"{" + b" " * 300_000 + b"}", "(command)", "larger than"),
    ],
)
def test_a_bad_line_names_its_number_and_field(line: bytes, field: str, reason: str) -> None:
    with pytest.raises(BadLine) as bad:
        parse_send_line(7, line)
    assert bad.value.line == 7
    assert any(e["field"] == field and reason in e["reason"] for e in bad.value.errors)
    assert str(bad.value).startswith(f"line 7: {field}")


def test_a_file_skips_blank_lines_and_keeps_only_its_good_ones(tmp_path: Path) -> None:
    first, other = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "commands.ndjson"
    path.write_bytes(
        b"\n".join(
            [
                orjson.dumps(progress_line(command_id=first)),
                b"",
                b"   ",
                b"{broken",
                orjson.dumps(progress_line(command_id=first)),  # the same id again
                orjson.dumps(progress_line(command_id=other, effective_date="2024-05-01")),
            ]
        )
        + b"\n"
    )
    commands, bad = read_send_file(path)
    assert [(c.line, str(c.command_id)) for c in commands] == [(1, first), (6, other)]
    assert [(b.line, b.errors[0]["field"]) for b in bad] == [(4, "(command)"), (5, "command_id")]
    assert "line 1 has this command_id already" in str(bad[1])


# --- `rectrack send`: which outcome answers which command


KEY_ID = "a" * 32


def outgoing() -> Outgoing:
    return parse_send_line(1, orjson.dumps(progress_line(command_id=str(uuid.uuid4()))))


def outcome(sent: Outgoing, **fields: Any) -> Outcome:
    values: dict[str, Any] = {
        "command_id": sent.command_id,
        "status": "accepted",
        "recorded_at": datetime.now(UTC),
        "key_id": KEY_ID,
        "principal": Principal(name="case-tool", team="team-a", role="contributor"),
        "command_digest": sent.digest,
    } | fields
    return Outcome.model_validate(values)


def test_our_key_s_outcome_for_our_payload_answers() -> None:
    sent = outgoing()
    assert answers(outcome(sent), sent, KEY_ID)
    assert answers(outcome(sent, status="rejected", reason="forbidden"), sent, KEY_ID)
    assert not answers(outcome(sent, command_digest="0" * 64), sent, KEY_ID)
    assert not answers(outcome(sent, key_id="b" * 32), sent, KEY_ID)  # another key's command
    assert not answers(outcome(outgoing()), sent, KEY_ID)  # another command id


def test_a_refusal_naming_no_key_answers_and_nothing_else_anonymous_does() -> None:
    sent = outgoing()
    refused = outcome(
        sent,
        status="rejected",
        reason="unauthenticated",
        key_id=None,
        principal=None,
        command_digest=None,
    )
    assert answers(refused, sent, KEY_ID)
    accepted_by_nobody = outcome(sent, key_id=None, principal=None, command_digest=None)
    assert not answers(accepted_by_nobody, sent, KEY_ID)


# --- The key registry and the principal's fields


def envelope(data: SigningKeyRegistered | SigningKeyRevoked, minute: int) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        type=type(data).__name__,
        stream_id=f"key:{data.key_id}",
        stream_version=1 if isinstance(data, SigningKeyRegistered) else 2,
        effective_date=datetime(2024, 1, 1).date(),
        recorded_at=datetime(2024, 1, 1, 12, minute, tzinfo=UTC),
        command_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        actor=Actor(name="admin", team="cli", role="admin"),
        data=data,
    )


def test_the_registry_folds_registrations_and_revocations() -> None:
    keys = [Signer(Ed25519PrivateKey.generate()) for _ in range(2)]
    who = Actor(name="case-tool", team="team-a", role="contributor")

    def registered(signer: Signer) -> SigningKeyRegistered:
        return SigningKeyRegistered(
            key_id=signer.key_id,
            public_key=encode_public_key(signer.public_key),
            principal=who,
            kind="team",
        )

    folded = fold_signing_keys(
        [
            envelope(registered(keys[0]), 1),
            envelope(registered(keys[1]), 2),
            envelope(SigningKeyRevoked(key_id=keys[0].key_id, reason="lost"), 3),
            envelope(SigningKeyRevoked(key_id="f" * 32, reason="unknown"), 4),
        ]
    )
    assert set(folded) == {keys[0].key_id, keys[1].key_id}
    first, second = folded[keys[0].key_id], folded[keys[1].key_id]
    assert first.revoked and first.revoked_reason == "lost" and first.revoked_at is not None
    assert first.revoked_at.minute == 3 and first.registered_at.minute == 1
    assert not second.revoked and second.principal == who and second.kind == "team"


def test_a_principal_s_fields_are_checked_and_each_fault_named() -> None:
    assert team_principal("case-tool", "Team A", "contributor") == Actor(
        name="case-tool", team="Team A", role="contributor"
    )
    with pytest.raises(InvalidFields) as bad:
        team_principal("Case Tool", "team\na", "boss")
    assert set(bad.value.problems) == {"name", "team", "role"}
    with pytest.raises(InvalidFields) as reserved:
        team_principal("rectrack-decider", "ops", "admin")
    assert set(reserved.value.problems) == {"name"}
    assert "app's own" in reserved.value.problems["name"]


def test_unit_tests_leave_no_file_open_to_others(tmp_path: Path) -> None:
    """The folder a credentials file is written into may be new: it is made private."""
    path = tmp_path / "new" / "team.json"
    write_credentials_file(path, credentials())
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert os.listdir(path.parent) == ["team.json"]  # no temporary file left beside it
