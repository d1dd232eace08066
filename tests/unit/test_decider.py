"""The Decider with its ports faked in memory: idempotency, partitions, dead letters, failures."""

import base64
from datetime import UTC, datetime
from itertools import count
from typing import Any
from uuid import UUID

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.chain import walk
from events.envelope import Actor
from events.integrity import chain_break, seal_document
from events.outcome import Outcome
from events.registry import parse_event, parse_outcome
from events.seals import TrustedKeys, verified_seal
from events.topics import Message, Topics
from services.decider import decider as decider_module
from services.decider.decider import Decider
from services.domain.authentication import anchor
from services.domain.commands import Command, dump_command, parse_command
from services.domain.idempotency import command_digest, principal_of
from services.domain.rejections import Reason
from services.domain.state import KeyState
from tests.builders import INSPECTOR, issue, publish, rec_command
from tests.fakes import BrokerAway, InMemoryLog, Record
from tests.sealing import TEST_DECIDER, TEST_DECIDER_KEYS, sealed, untrusted_sealer
from tests.signing import fixed_signer, signed

TOPICS = Topics.with_prefix("unit.")
PARTITIONS = 3
NOW = datetime(2024, 9, 18, 12, 0, tzinfo=UTC)
# The gateway key the deciders of these tests trust as their anchor.
GATEWAY = fixed_signer(1)


def gateway_anchors() -> dict[str, KeyState]:
    gateway = anchor(GATEWAY.public_key, "gateway")
    return {gateway.key_id: gateway}


def make_decider(log: InMemoryLog) -> Decider:
    ids = count(1)
    return Decider(
        TOPICS,
        log,
        log,
        partitions=PARTITIONS,
        anchors=gateway_anchors(),
        sealer=TEST_DECIDER,
        keys=TEST_DECIDER_KEYS,
        clock=lambda: NOW,
        new_id=lambda: UUID(int=next(ids)),
    )


class CommandsTopic:
    """Offsets handed out as a commands partition would; commands signed by the gateway."""

    def __init__(self) -> None:
        self.offsets = count()

    def message(
        self, decider: Decider, command: Command, *, partition: int | None = None
    ) -> Message:
        return self.raw(decider, command.stream_id, signed(GATEWAY, command), partition)

    def raw(
        self, decider: Decider, stream_id: str, value: bytes, partition: int | None = None
    ) -> Message:
        """A message of these bytes, on the partition this stream's key gives (or another)."""
        home = decider.home_partition(stream_id)
        return Message(home if partition is None else partition, next(self.offsets), None, value)


def events_in(log: InMemoryLog) -> list[str]:
    return [parse_event(r.value).stream_id for r in log.topic(TOPICS.events)]


async def test_a_repeated_command_id_gets_its_first_outcome_and_appends_nothing() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    command = publish()
    first, again = await decider.handle(
        [commands.message(decider, command), commands.message(decider, command)]
    )
    assert first.status == "accepted" and again == first
    assert events_in(log) == [command.stream_id]


async def test_a_repeated_command_id_is_recognised_by_a_fresh_decider_from_the_log() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    command = publish()
    first = await make_decider(log).handle([commands.message(make_decider(log), command)])
    restarted = make_decider(log)
    (again,) = await restarted.handle([commands.message(restarted, command)])
    assert again.event_ids == first[0].event_ids
    assert len(events_in(log)) == 1


async def test_a_command_on_another_partition_than_its_key_gives_is_refused() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    command = publish()
    wrong = (decider.home_partition(command.stream_id) + 1) % PARTITIONS
    (outcome,) = await decider.handle([commands.message(decider, command, partition=wrong)])
    assert outcome.status == "rejected"
    assert outcome.reason == Reason.INVALID_COMMAND.value
    assert f"arrived on partition {wrong}" in (outcome.detail or "")
    assert events_in(log) == []


async def test_a_malformed_command_is_dead_lettered_and_answered() -> None:
    log = InMemoryLog(PARTITIONS)
    decider = make_decider(log)
    raw = GATEWAY.sign(b'{"type": "PublishInspection", "data": ')  # signed, but no command
    (outcome,) = await decider.handle([Message(1, 7, None, raw)])
    assert outcome.status == "rejected" and outcome.reason == Reason.INVALID_COMMAND.value
    (dead,) = log.topic(TOPICS.dead_letters)
    record = orjson.loads(dead.value)
    assert (record["topic"], record["partition"], record["offset"]) == (TOPICS.commands, 1, 7)
    assert base64.b64decode(record["value_base64"]) == raw
    (published,) = log.topic(TOPICS.outcomes)
    assert parse_outcome(published.value) == outcome
    assert events_in(log) == []


async def test_a_failed_send_drops_what_the_batch_folded_and_the_retry_appends_once() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    inspection = publish()
    await decider.handle([commands.message(decider, inspection)])
    recommendation = issue(inspection.stream_id, 1)
    batch = [commands.message(decider, recommendation)]

    log.refuse_sends = 1
    with pytest.raises(BrokerAway):
        await decider.handle(batch)
    assert recommendation.stream_id not in decider.state.streams  # folded, never appended
    assert decider.state.outcome_of(recommendation.command_id) is None

    (outcome,) = await decider.handle(batch)
    assert outcome.status == "accepted" and outcome.stream_version == 1
    assert events_in(log) == [inspection.stream_id, recommendation.stream_id]


# A command id belongs to one sender and one payload (issue 13, finding 6).

VIEWER = {"name": "Viewer Test", "team": "hmics", "role": "viewer"}
OTHER_INSPECTOR = {"name": "Another Inspector", "team": "hmics", "role": "inspector"}


def reusing(command: Command, **changes: Any) -> Command:
    """Another command under the same command id (changes: actor, data, effective_date...)."""
    doc = orjson.loads(dump_command(command))
    return parse_command({**doc, **changes})


def outcomes_in(log: InMemoryLog) -> list[Outcome]:
    return [parse_outcome(r.value) for r in log.topic(TOPICS.outcomes)]


async def test_an_id_reused_by_another_sender_is_refused_and_the_first_record_stands() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    first = publish()
    other = reusing(first, actor=OTHER_INSPECTOR)  # the very same payload, another sender
    accepted, reused, again = await decider.handle(
        [commands.message(decider, c) for c in (first, other, first)]
    )
    assert accepted.status == "accepted"
    assert (reused.status, reused.reason) == ("rejected", Reason.COMMAND_ID_REUSED.value)
    assert reused.principal == principal_of(other.actor) and reused.event_ids == ()
    assert again == accepted  # the first sender still gets its own outcome
    assert events_in(log) == [first.stream_id]


async def test_an_id_reused_with_another_payload_by_its_own_sender_is_refused() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    insp = publish()
    rec = issue(insp.stream_id, 1)
    await decider.handle([commands.message(decider, c) for c in (insp, rec)])
    # The same sender, the same stream, another command: not a resend of the first.
    owner = reusing(
        rec,
        type="AssignOwner",
        data={"recommendation_id": rec.stream_id, "team": "team-a", "owner_role": "lead"},
    )
    later = reusing(rec, effective_date="2024-01-11")  # only the business date differs
    for command in (owner, later):
        (outcome,) = await decider.handle([commands.message(decider, command)])
        assert outcome.reason == Reason.COMMAND_ID_REUSED.value
    assert events_in(log) == [insp.stream_id, rec.stream_id]
    assert (
        decider.state.outcome_of(rec.command_id)
        == (await decider.handle([commands.message(decider, rec)]))[0]
    )


async def test_a_refused_command_does_not_answer_another_sender_under_its_id() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    genuine = publish()
    squat = reusing(genuine, actor=VIEWER)
    (refused,) = await decider.handle([commands.message(decider, squat)])
    assert refused.reason == Reason.FORBIDDEN.value
    (answer,) = await decider.handle([commands.message(decider, genuine)])
    assert answer.reason == Reason.COMMAND_ID_REUSED.value  # never the viewer's "forbidden"
    assert answer.principal == principal_of(genuine.actor)
    assert events_in(log) == []
    (viewer_again,) = await decider.handle([commands.message(decider, squat)])
    assert viewer_again == refused


async def test_a_decider_rebuilt_from_the_log_keeps_every_id_s_first_claim() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    first_decider = make_decider(log)
    accepted_cmd = publish()
    refused_cmd = reusing(publish(), actor=VIEWER)
    before = await first_decider.handle(
        [
            commands.message(first_decider, c)
            for c in (
                accepted_cmd,
                refused_cmd,
                # Reuse refusals sit in the outcomes topic too; they must not become records.
                reusing(accepted_cmd, actor=OTHER_INSPECTOR),
                reusing(refused_cmd, actor=INSPECTOR),
            )
        ]
    )
    restarted = make_decider(log)
    after = await restarted.handle(
        [
            commands.message(restarted, c)
            for c in (
                reusing(accepted_cmd, actor=OTHER_INSPECTOR),
                reusing(refused_cmd, actor=INSPECTOR),
                reusing(accepted_cmd, data={**accepted_cmd.data.model_dump(), "title": "Other"}),
                accepted_cmd,
                refused_cmd,
            )
        ]
    )
    assert [o.reason for o in after[:3]] == [Reason.COMMAND_ID_REUSED.value] * 3
    assert after[3].event_ids == before[0].event_ids and after[3].status == "accepted"
    assert after[4].reason == Reason.FORBIDDEN.value
    assert events_in(log) == [accepted_cmd.stream_id]


async def test_an_id_reused_on_another_inspection_s_partition_is_refused() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    first = publish()
    elsewhere = next(
        c
        for c in (
            reusing(first, data={**first.data.model_dump(), "inspection_id": f"i{n}"})
            for n in range(100)
        )
        if decider.home_partition(c.stream_id) != decider.home_partition(first.stream_id)
    )
    await decider.handle([commands.message(decider, first)])
    (outcome,) = await decider.handle([commands.message(decider, elsewhere)])
    assert outcome.reason == Reason.COMMAND_ID_REUSED.value
    # A fresh decider whose first batch is from the other partition has read the first's too.
    restarted = make_decider(log)
    (outcome,) = await restarted.handle([commands.message(restarted, elsewhere)])
    assert outcome.reason == Reason.COMMAND_ID_REUSED.value
    assert events_in(log) == [first.stream_id]


async def test_a_malformed_message_naming_an_id_does_not_take_it() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    genuine = publish()
    squat = GATEWAY.sign(
        orjson.dumps({"type": "PublishInspection", "command_id": str(genuine.command_id)})
    )
    (malformed,) = await make_decider(log).handle([Message(0, 0, None, squat)])
    assert malformed.reason == Reason.INVALID_COMMAND.value and malformed.principal is None
    restarted = make_decider(log)  # which reads the malformed outcome back from the log
    (outcome,) = await restarted.handle([commands.message(restarted, genuine)])
    assert outcome.status == "accepted"


def _without_claims(log: InMemoryLog) -> InMemoryLog:
    """The log as a version before claims wrote it: events without digest, outcomes anonymous."""
    old = InMemoryLog(PARTITIONS)
    heads: dict[str, str | None] = {}
    for tp, records in sorted(log.records.items()):
        for r in records:
            doc = orjson.loads(r.value)
            value = None
            if tp.topic == TOPICS.events:
                doc.pop("command_digest")
                doc = seal_document(
                    {k: v for k, v in doc.items() if k not in ("hash", "seal")},
                    heads.get(doc["stream_id"]),
                )
                heads[doc["stream_id"]] = doc["hash"]
                # The decider of that version wrote it.
                value = sealed(orjson.dumps(doc), partition=r.partition)
            elif tp.topic == TOPICS.outcomes:
                doc.pop("principal")
                doc.pop("command_digest")
            old.records.setdefault(tp, []).append(
                Record(r.topic, r.partition, r.offset, r.key, value or orjson.dumps(doc))
            )
    return old


async def test_records_from_before_claims_are_matched_on_what_the_log_kept() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    accepted_cmd = publish()
    rejected_cmd = reusing(publish(), actor=VIEWER)
    first, refused = await decider.handle(
        [commands.message(decider, c) for c in (accepted_cmd, rejected_cmd)]
    )
    old_log = _without_claims(log)
    restarted = make_decider(old_log)
    same, other_sender, genuine = await restarted.handle(
        [
            commands.message(restarted, c)
            for c in (
                accepted_cmd,  # an event names its actor: same sender and stream is a resend
                reusing(accepted_cmd, actor=OTHER_INSPECTOR),
                # An old rejection names nobody: it is no record, the command is decided anew.
                reusing(rejected_cmd, actor=INSPECTOR),
            )
        ]
    )
    assert same.event_ids == first.event_ids and same.command_digest is None
    assert other_sender.reason == Reason.COMMAND_ID_REUSED.value
    assert refused.reason == Reason.FORBIDDEN.value and genuine.status == "accepted"
    assert len(events_in(old_log)) == 2


async def test_each_sender_s_principal_is_kept_once_however_many_commands() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    sent = [publish() for _ in range(5)]
    await decider.handle([commands.message(decider, c) for c in sent])
    principals = [decider.state.first_claim(c.command_id) for c in sent]
    assert len({id(p[0]) for p in principals if p}) == 1
    assert all(
        p is not None and p[1] == command_digest(c) for p, c in zip(principals, sent, strict=True)
    )


async def test_a_file_loaded_again_by_its_loader_is_repeated_and_by_another_is_refused() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    insp = publish()
    lines = [insp, issue(insp.stream_id, 1)]  # fixed ids, as a load file carries them

    def loaded_by(name: str) -> list[Message]:
        loader = Actor(name=name, team="cli", role="admin")
        return [
            commands.message(decider, c.model_copy(update={"loaded_by": loader})) for c in lines
        ]

    first = await decider.handle(loaded_by("alex"))
    again = await decider.handle(loaded_by("alex"))
    other = await decider.handle(loaded_by("sam"))
    assert [o.status for o in first] == ["accepted", "accepted"] and again == first
    assert [o.reason for o in other] == [Reason.COMMAND_ID_REUSED.value] * 2
    assert events_in(log) == [c.stream_id for c in lines]


# Events only the decider can write (issue 14, part 3): seals.


def _docs_by_partition(log: InMemoryLog) -> dict[int, list[dict[str, Any]]]:
    docs: dict[int, list[dict[str, Any]]] = {}
    for r in log.topic(TOPICS.events):
        docs.setdefault(r.partition, []).append(orjson.loads(r.value))
    return docs


def _messages(log: InMemoryLog) -> list[Message]:
    return [Message(r.partition, r.offset, r.key, r.value) for r in log.topic(TOPICS.events)]


async def test_each_batch_seals_its_events_on_each_partition_with_one_signature() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    inspections: dict[int, Command] = {}
    while len(inspections) < 2:  # two inspections whose events go to different partitions
        candidate = publish()
        inspections.setdefault(decider.home_partition(candidate.stream_id), candidate)
    batch = [c for i in inspections.values() for c in (i, issue(i.stream_id, 1))]
    batch += [issue(i.stream_id, 2) for i in inspections.values()]
    outcomes = await decider.handle([commands.message(decider, c) for c in batch])
    assert all(o.status == "accepted" for o in outcomes)

    docs = _docs_by_partition(log)
    assert set(docs) == set(inspections)
    for partition, events in docs.items():
        assert len(events) == 3
        seal = events[0]["seal"]
        assert seal["hashes"] == [e["hash"] for e in events]  # in log order, its own first
        assert seal["key_id"] == TEST_DECIDER.key_id
        assert all("seal" not in e for e in events[1:])
        verified_seal(seal, events[0]["hash"], TEST_DECIDER_KEYS, partition, 0)
        assert all(chain_break(e, e["prev_hash"]) is None for e in events)  # hashes unchanged

    # The next batch has a seal of its own.
    later = issue(next(iter(inspections.values())).stream_id, 3)
    await decider.handle([commands.message(decider, later)])
    [last] = [
        e
        for es in _docs_by_partition(log).values()
        for e in es
        if e["stream_id"] == (later.stream_id)
    ]
    assert last["seal"]["hashes"] == [last["hash"]]
    assert walk(TOPICS.events, _messages(log), keys=TEST_DECIDER_KEYS).clean


async def test_a_forged_event_in_the_log_is_not_a_fact_the_decider_folds() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    insp = publish()
    rec = issue(insp.stream_id, 1)
    await decider.handle([commands.message(decider, c) for c in (insp, rec)])
    genuine_head = decider.state.heads[rec.stream_id]
    # Issue 14's attack: the stream's next version, linked and hashed, written straight to the
    # events topic by someone who is not the decider: an inspectorate decision closing it.
    issued = orjson.loads(log.topic(TOPICS.events)[-1].value)
    forged = seal_document(
        {
            **{k: v for k, v in issued.items() if k not in ("hash", "seal")},
            "type": "InspectorateDecisionRecorded",
            "stream_version": 2,
            "data": {"recommendation_id": rec.stream_id, "decision": "closed", "rationale": "x"},
        },
        genuine_head,
    )
    home = decider.home_partition(rec.stream_id)
    await log.send(TOPICS.events, orjson.dumps(forged), key=insp.stream_id.encode(), partition=home)

    # Caught up while running, and after a restart.
    for version, reader in enumerate((decider, make_decider(log)), start=2):
        progress = rec_command(
            "ReportProgress", rec.stream_id, position="on it", delivery_status="on_track"
        )
        (outcome,) = await reader.handle([commands.message(reader, progress)])
        assert outcome.status == "accepted", outcome.detail
        event = orjson.loads(log.topic(TOPICS.events)[-1].value)
        # Linked to the genuine head, not to the forgery, so it projects.
        assert event["prev_hash"] == genuine_head and event["stream_version"] == version
        genuine_head = event["hash"]
        # The forgery is the only event the chain walk names.
        report = walk(TOPICS.events, _messages(log), keys=TEST_DECIDER_KEYS)
        assert not report.breaks
        assert [(b.partition, b.offset) for b in report.unauthenticated] == [(home, 2)]


async def test_a_decider_restarted_with_a_new_key_keeps_the_log_verifying() -> None:
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    old = make_decider(log)
    insp = publish()
    await old.handle([commands.message(old, c) for c in (insp, issue(insp.stream_id, 1))])
    new_key = untrusted_sealer()
    both = TrustedKeys(
        Ed25519PublicKey.from_public_bytes(k) for k in (TEST_DECIDER.public_key, new_key.public_key)
    )
    rotated = Decider(
        TOPICS,
        log,
        log,
        partitions=PARTITIONS,
        anchors=gateway_anchors(),
        sealer=new_key,
        keys=both,
        clock=lambda: NOW,
    )
    (outcome,) = await rotated.handle([commands.message(rotated, issue(insp.stream_id, 2))])
    assert outcome.status == "accepted" and outcome.stream_version == 1
    assert rotated.state.streams.keys() == {
        insp.stream_id,
        f"{insp.stream_id}/r1",
        outcome.stream_id,
    }
    assert orjson.loads(log.topic(TOPICS.events)[-1].value)["seal"]["key_id"] == new_key.key_id
    assert walk(TOPICS.events, _messages(log), keys=both).clean
    # Without the old key, what it sealed is named; what the new one sealed is not.
    only_new = TrustedKeys([Ed25519PublicKey.from_public_bytes(new_key.public_key)])
    report = walk(TOPICS.events, _messages(log), keys=only_new)
    assert len(report.unauthenticated) == 2 and not report.breaks


async def test_a_partition_with_more_events_than_a_seal_may_list_gets_a_seal_per_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decider_module, "MAX_SEALED_HASHES", 2)
    log, commands = InMemoryLog(PARTITIONS), CommandsTopic()
    decider = make_decider(log)
    insp = publish()
    batch = [insp, *(issue(insp.stream_id, n) for n in range(1, 5))]
    await decider.handle([commands.message(decider, c) for c in batch])
    (events,) = _docs_by_partition(log).values()
    assert [len(e["seal"]["hashes"]) if "seal" in e else 0 for e in events] == [2, 0, 2, 0, 1]
    assert walk(TOPICS.events, _messages(log), keys=TEST_DECIDER_KEYS).clean
