"""Signed commands through the Decider on its in-memory log (issue 14, part 2).

The actor of a command comes from the key that signed it: unsigned, forged, unknown and
revoked are `unauthenticated`; a team key acts only as its principal (`actor_mismatch`
otherwise); only a gateway key asserts another actor. Every refusal is dead-lettered,
appends nothing and names no sender.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from events.ed25519 import encode_public_key
from events.envelope import Envelope
from events.outcome import Outcome
from events.registry import parse_event, parse_outcome
from events.signing import SignedCommand, Signer, verify_command_signature
from events.streams import key_stream_id
from events.topics import Message
from services.decider.decider import Decider
from services.decider.verifier import BatchVerifier, Job, verify_all
from services.domain.authentication import ANCHOR_PRINCIPALS, anchor, self_registration
from services.domain.commands import Command, dump_command
from services.domain.rejections import Reason
from services.domain.state import KeyState
from tests.builders import ADMIN, INSPECTOR, command, contributor, issue, publish, rec_command
from tests.fakes import InMemoryLog
from tests.sealing import TEST_DECIDER, TEST_DECIDER_KEYS
from tests.signing import fixed_signer, signed
from tests.unit.test_decider import GATEWAY, PARTITIONS, TOPICS, CommandsTopic, make_decider

TEAM_A = contributor("team-a")
TEAM_KEY = fixed_signer(2)
OTHER_KEY = fixed_signer(3)


def events_in(log: InMemoryLog) -> list[Envelope]:
    return [parse_event(r.value) for r in log.topic(TOPICS.events)]


def dead_letters(log: InMemoryLog) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in log.topic(TOPICS.dead_letters)]


def register(signer: Signer, principal: dict[str, str], kind: str = "team") -> Command:
    """An admin's RegisterSigningKey, as the API would send it through the gateway."""
    return command(
        "RegisterSigningKey",
        {"public_key": encode_public_key(signer.public_key), "principal": principal, "kind": kind},
        actor=ADMIN,
        effective_date=None,
    )


def revoke(signer: Signer, reason: str = "left the team") -> Command:
    return command(
        "RevokeSigningKey",
        {"key_id": signer.key_id, "reason": reason},
        actor=ADMIN,
        effective_date=None,
    )


class Scene:
    """A decider with an inspection, a recommendation owned by team-a, and team-a's key."""

    def __init__(self, inspection_id: str | None = None) -> None:
        self.log = InMemoryLog(PARTITIONS)
        self.decider = make_decider(self.log)
        self.topic = CommandsTopic()
        self.insp = publish(inspection_id)
        self.rec = issue(self.insp.stream_id, 1)
        self.rec_id = self.rec.stream_id

    async def given(self, *commands: Command) -> list[Outcome]:
        outcomes = await self.decider.handle(
            [self.topic.message(self.decider, c) for c in commands]
        )
        assert {o.status for o in outcomes} == {"accepted"}, outcomes
        return outcomes

    async def set_up(self) -> "Scene":
        await self.given(
            self.insp,
            self.rec,
            rec_command("AssignOwner", self.rec_id, team="team-a", owner_role="lead"),
            register(TEAM_KEY, TEAM_A),
        )
        return self

    def evidence_doc(self, evidence_id: str = "e1", **top: Any) -> dict[str, Any]:
        """A SubmitEvidence document as a team's system writes it (no actor unless given)."""
        return {
            "type": "SubmitEvidence",
            "data": {
                "recommendation_id": self.rec_id,
                "evidence_id": evidence_id,
                "summary": "Training delivered",
            },
            "effective_date": "2024-06-01",
            **top,
        }

    async def send(self, value: bytes, stream_id: str | None = None) -> Outcome:
        message = self.topic.raw(self.decider, stream_id or self.rec_id, value)
        (outcome,) = await self.decider.handle([message])
        return outcome


def assert_refused(scene: Scene, outcome: Outcome, reason: Reason, before: int) -> None:
    """Refused with this reason, answered naming no sender, dead-lettered, nothing appended."""
    assert (outcome.status, outcome.reason) == ("rejected", reason.value), outcome
    assert outcome.principal is None and outcome.event_ids == ()
    assert len(events_in(scene.log)) == before
    assert dead_letters(scene.log)[-1]["reason"].startswith(reason.value)
    assert outcome in [parse_outcome(r.value) for r in scene.log.topic(TOPICS.outcomes)]


async def test_an_unsigned_command_is_unauthenticated_whatever_actor_it_claims() -> None:
    scene = await Scene().set_up()
    before = len(events_in(scene.log))
    for actor in (TEAM_A, INSPECTOR, ADMIN):
        doc = scene.evidence_doc(actor=actor)
        outcome = await scene.send(orjson.dumps(doc))
        assert_refused(scene, outcome, Reason.UNAUTHENTICATED, before)
        assert "not a signed command" in (outcome.detail or "")
    garbage = await scene.send(b"\xff not json at all")
    assert_refused(scene, garbage, Reason.UNAUTHENTICATED, before)


async def test_a_signature_over_other_bytes_is_unauthenticated() -> None:
    scene = await Scene().set_up()
    before = len(events_in(scene.log))
    wire = orjson.loads(signed(TEAM_KEY, scene.evidence_doc()))
    # The payload changed after signing (one more space is other bytes, too).
    for payload in (wire["payload"].replace("Training", "Nothing"), wire["payload"] + " "):
        outcome = await scene.send(orjson.dumps({**wire, "payload": payload}))
        assert_refused(scene, outcome, Reason.UNAUTHENTICATED, before)
        assert "does not verify" in (outcome.detail or "")
    # Another key's signature under the team key's id.
    forged = orjson.loads(signed(OTHER_KEY, scene.evidence_doc()))
    outcome = await scene.send(orjson.dumps({**forged, "key_id": TEAM_KEY.key_id}))
    assert_refused(scene, outcome, Reason.UNAUTHENTICATED, before)


async def test_a_key_the_log_does_not_know_is_unauthenticated() -> None:
    scene = await Scene().set_up()
    before = len(events_in(scene.log))
    outcome = await scene.send(signed(OTHER_KEY, scene.evidence_doc(actor=TEAM_A)))
    assert_refused(scene, outcome, Reason.UNAUTHENTICATED, before)
    assert f"key {OTHER_KEY.key_id} is not registered" in (outcome.detail or "")
    # Nor can an unknown key register itself: only a configured anchor may.
    own = self_registration(OTHER_KEY.public_key, "gateway")
    outcome = await scene.send(signed(OTHER_KEY, own), own.stream_id)
    assert_refused(scene, outcome, Reason.UNAUTHENTICATED, before)


async def test_a_team_key_acts_as_its_principal_and_its_event_carries_the_signature() -> None:
    scene = await Scene().set_up()
    wire = signed(TEAM_KEY, scene.evidence_doc())  # no actor: the key's principal acts
    outcome = await scene.send(wire)
    assert outcome.status == "accepted", outcome
    assert outcome.key_id == TEAM_KEY.key_id
    assert outcome.principal is not None and outcome.principal.name == TEAM_A["name"]
    event = events_in(scene.log)[-1]
    assert event.actor.model_dump() == TEAM_A
    recorded = event.command_signature
    assert recorded is not None and recorded.payload == orjson.loads(wire)["payload"]
    # Anyone holding the log checks it against the key's registration, also in the log.
    registration = next(
        e for e in events_in(scene.log) if e.stream_id == key_stream_id(TEAM_KEY.key_id)
    )
    public_key = registration.data.model_dump()["public_key"]
    assert verify_command_signature(recorded, public_key)
    assert not verify_command_signature(recorded, encode_public_key(OTHER_KEY.public_key))
    tampered = recorded.model_copy(update={"payload": recorded.payload.replace("e1", "e2")})
    assert not verify_command_signature(tampered, public_key)
    # Naming the principal itself is the same as naming nobody.
    again = await scene.send(signed(TEAM_KEY, scene.evidence_doc("e2", actor=TEAM_A)))
    assert again.status == "accepted"


async def test_a_team_key_claiming_another_actor_or_role_is_refused() -> None:
    scene = await Scene().set_up()
    before = len(events_in(scene.log))
    claims = [
        {**TEAM_A, "name": "Someone Else"},
        {**TEAM_A, "team": "team-b"},
        {**TEAM_A, "role": "admin"},
        INSPECTOR,
    ]
    for claim in claims:
        outcome = await scene.send(signed(TEAM_KEY, scene.evidence_doc(actor=claim)))
        assert_refused(scene, outcome, Reason.ACTOR_MISMATCH, before)
        assert outcome.key_id == TEAM_KEY.key_id  # the sender is known: its key verified
    # A loader is an identity too: only a gateway asserts one.
    loaded = scene.evidence_doc(actor=TEAM_A, loaded_by=ADMIN)
    outcome = await scene.send(signed(TEAM_KEY, loaded))
    assert_refused(scene, outcome, Reason.ACTOR_MISMATCH, before)


async def test_a_contributor_s_key_closes_nothing() -> None:
    scene = await Scene().set_up()
    evidence = await scene.send(signed(TEAM_KEY, scene.evidence_doc()))
    proposal = {
        "type": "ProposeClosure",
        "data": {"recommendation_id": scene.rec_id, "rationale": "done", "evidence_ids": ["e1"]},
    }
    assert evidence.status == "accepted"
    assert (await scene.send(signed(TEAM_KEY, proposal))).status == "accepted"
    before = len(events_in(scene.log))
    close = {
        "type": "RecordInspectorateDecision",
        "data": {"recommendation_id": scene.rec_id, "decision": "closed", "rationale": "ok"},
    }
    # Claiming the inspector role: the key says otherwise.
    claimed = await scene.send(signed(TEAM_KEY, {**close, "actor": INSPECTOR}))
    assert_refused(scene, claimed, Reason.ACTOR_MISMATCH, before)
    # As itself: a contributor may not record the inspectorate's decision.
    as_itself = await scene.send(signed(TEAM_KEY, close))
    assert (as_itself.status, as_itself.reason) == ("rejected", Reason.FORBIDDEN.value)
    assert len(events_in(scene.log)) == before
    assert scene.decider.state.streams[scene.rec_id].model_dump()["last_decision"] is None


async def test_only_a_gateway_key_asserts_the_actor_it_was_given() -> None:
    scene = await Scene().set_up()
    as_inspector = scene.evidence_doc(actor=ADMIN)
    outcome = await scene.send(signed(GATEWAY, as_inspector))
    assert outcome.status == "accepted" and outcome.key_id == GATEWAY.key_id
    assert events_in(scene.log)[-1].actor.model_dump() == ADMIN


async def test_a_revoked_key_fails_for_every_command_decided_after_its_revocation() -> None:
    scene = await Scene().set_up()
    first = signed(TEAM_KEY, scene.evidence_doc("e1"))
    later = signed(TEAM_KEY, scene.evidence_doc("e2"))
    home = scene.topic.raw(scene.decider, scene.rec_id, first)
    revocation = scene.topic.message(scene.decider, revoke(TEAM_KEY))
    after = scene.topic.raw(scene.decider, scene.rec_id, later)
    # One batch, in log order: before the revocation it acts, after it does not.
    accepted, revoked, refused = await scene.decider.handle([home, revocation, after])
    assert (accepted.status, revoked.status) == ("accepted", "accepted")
    assert (refused.status, refused.reason) == ("rejected", Reason.UNAUTHENTICATED.value)
    assert f"key {TEAM_KEY.key_id} is revoked" in (refused.detail or "")
    # Its earlier command sent again is refused too, not answered with its first outcome.
    (resent,) = await scene.decider.handle([scene.topic.raw(scene.decider, scene.rec_id, first)])
    assert resent.reason == Reason.UNAUTHENTICATED.value
    # A decider rebuilt from the log knows the revocation, whichever partition it is on.
    restarted = make_decider(scene.log)
    (fresh,) = await restarted.handle([scene.topic.raw(restarted, scene.rec_id, later)])
    assert fresh.reason == Reason.UNAUTHENTICATED.value
    types = [e.type for e in events_in(scene.log)]
    assert types.count("EvidenceSubmitted") == 1 and types.count("SigningKeyRevoked") == 1
    # Revoked for ever: it is not registered again, nor revoked twice.
    again, twice = await scene.decider.handle(
        [
            scene.topic.message(scene.decider, c)
            for c in (register(TEAM_KEY, TEAM_A), revoke(TEAM_KEY))
        ]
    )
    assert again.reason == Reason.KEY_ALREADY_REGISTERED.value
    assert twice.reason == Reason.KEY_ALREADY_REVOKED.value


async def test_only_an_admin_registers_or_revokes_keys() -> None:
    scene = await Scene().set_up()
    for cmd in (register(OTHER_KEY, TEAM_A), revoke(TEAM_KEY)):
        doc = orjson.loads(dump_command(cmd))
        (outcome,) = await scene.decider.handle(
            [
                scene.topic.raw(
                    scene.decider, cmd.stream_id, signed(GATEWAY, {**doc, "actor": INSPECTOR})
                )
            ]
        )
        assert outcome.reason == Reason.FORBIDDEN.value
        # A team key of an admin-less principal cannot do it as itself either.
        as_team = {k: v for k, v in doc.items() if k not in ("actor", "command_id")}
        (outcome,) = await scene.decider.handle(
            [scene.topic.raw(scene.decider, cmd.stream_id, signed(TEAM_KEY, as_team))]
        )
        assert outcome.reason == Reason.FORBIDDEN.value
    (unknown,) = await scene.decider.handle([scene.topic.message(scene.decider, revoke(OTHER_KEY))])
    assert unknown.reason == Reason.KEY_NOT_FOUND.value


async def test_an_unauthenticated_command_does_not_take_its_command_id() -> None:
    scene = await Scene().set_up()
    genuine = scene.evidence_doc(command_id="6b0b6b43-33bb-4c3b-9d47-3b2b3d0d6d35")
    squat = await scene.send(orjson.dumps({**genuine, "actor": TEAM_A}))
    assert squat.reason == Reason.UNAUTHENTICATED.value
    assert str(squat.command_id) == genuine["command_id"]  # so its sender can find it
    outcome = await scene.send(signed(TEAM_KEY, genuine))
    assert outcome.status == "accepted"
    # Nor after a restart, when the refusal is read back from the outcomes topic.
    restarted = make_decider(scene.log)
    (again,) = await restarted.handle(
        [scene.topic.raw(restarted, scene.rec_id, signed(TEAM_KEY, genuine))]
    )
    assert (again.status, again.event_ids) == ("accepted", outcome.event_ids)


async def test_the_gateway_anchor_registers_itself_and_the_log_names_it() -> None:
    scene = Scene()
    own = self_registration(GATEWAY.public_key, "gateway")
    outcome = await scene.send(signed(GATEWAY, own), own.stream_id)
    assert outcome.status == "accepted"
    (event,) = events_in(scene.log)
    assert event.stream_id == key_stream_id(GATEWAY.key_id)
    assert event.actor == ANCHOR_PRINCIPALS["gateway"]
    assert event.data.model_dump()["kind"] == "gateway"
    assert event.command_signature is not None
    assert verify_command_signature(event.command_signature, GATEWAY.public_key)
    # Every start sends the same command: answered with the first outcome, appended once.
    assert await scene.send(signed(GATEWAY, own), own.stream_id) == outcome
    assert len(events_in(scene.log)) == 1


async def test_a_decider_key_signs_nothing_but_its_own_registration() -> None:
    decider_key = fixed_signer(4)
    log = InMemoryLog(PARTITIONS)
    own_anchor = anchor(decider_key.public_key, "decider")
    gateway_anchor = anchor(GATEWAY.public_key, "gateway")
    decider = Decider(
        TOPICS,
        log,
        log,
        partitions=PARTITIONS,
        anchors={a.key_id: a for a in (own_anchor, gateway_anchor)},
        sealer=TEST_DECIDER,
        keys=TEST_DECIDER_KEYS,
    )
    topic = CommandsTopic()
    own = self_registration(decider_key.public_key, "decider")
    others = self_registration(GATEWAY.public_key, "gateway")
    inspection = publish()
    outcomes = await decider.handle(
        [
            topic.raw(decider, own.stream_id, signed(decider_key, own)),
            topic.raw(decider, others.stream_id, signed(decider_key, others)),
            topic.raw(decider, inspection.stream_id, signed(decider_key, inspection)),
        ]
    )
    assert [o.reason for o in outcomes] == [None, "unauthenticated", "unauthenticated"]
    assert [e.stream_id for e in events_in(log)] == [key_stream_id(decider_key.key_id)]


async def test_the_gateway_key_rotates_and_a_revoked_anchor_stays_revoked() -> None:
    scene = await Scene().set_up()
    own = self_registration(GATEWAY.public_key, "gateway")
    assert (await scene.send(signed(GATEWAY, own), own.stream_id)).status == "accepted"
    new_gateway = fixed_signer(5)
    # 1. An admin registers the new gateway key (through the current gateway).
    await scene.given(register(new_gateway, ANCHOR_PRINCIPALS["gateway"].model_dump(), "gateway"))
    # 2. The API switches to the new key; 3. an admin revokes the old one, which the decider
    # still has as a configured anchor: the log's revocation wins.
    as_admin = orjson.loads(dump_command(revoke(GATEWAY, "rotated")))
    (revoked,) = await scene.decider.handle(
        [scene.topic.raw(scene.decider, revoke(GATEWAY).stream_id, signed(new_gateway, as_admin))]
    )
    assert revoked.status == "accepted"
    assert isinstance(scene.decider.state.streams[key_stream_id(GATEWAY.key_id)], KeyState)
    old = await scene.send(signed(GATEWAY, scene.evidence_doc("e1", actor=ADMIN)))
    assert old.reason == Reason.UNAUTHENTICATED.value
    new = await scene.send(signed(new_gateway, scene.evidence_doc("e1", actor=ADMIN)))
    assert new.status == "accepted" and new.key_id == new_gateway.key_id


async def test_a_batch_verified_ahead_in_the_helper_gets_the_outcomes_of_one_verified_here() -> (
    None
):
    """Keys registered and revoked mid-batch, forged and unsigned messages, one batch of 40:
    the helper process moves only the cryptography; the log's order still decides."""
    late_key = fixed_signer(6)  # registered in the middle of the batch

    def batch(scene: Scene) -> list[Message]:
        items: list[Message] = []
        for n in range(40):
            doc = scene.evidence_doc(f"e{n}", command_id=str(UUID(int=1000 + n)))
            signer = late_key if n % 2 else TEAM_KEY
            value = signed(signer, doc)
            if n == 10:
                items.append(scene.topic.message(scene.decider, register(late_key, TEAM_A)))
                continue
            if n == 25:
                items.append(scene.topic.message(scene.decider, revoke(TEAM_KEY)))
                continue
            if n % 9 == 0:  # another key's signature under the team key's id
                value = orjson.dumps(
                    {**orjson.loads(signed(OTHER_KEY, doc)), "key_id": TEAM_KEY.key_id}
                )
            if n == 13:
                value = orjson.dumps(doc)
            items.append(scene.topic.raw(scene.decider, scene.rec_id, value))
        return items

    inspection = f"insp-{uuid4().hex[:10]}"
    here = await Scene(inspection).set_up()
    helped = await Scene(inspection).set_up()
    verifier = BatchVerifier()
    await verifier.start()
    helped.decider.verifier = verifier
    try:
        expected = await here.decider.handle(batch(here))
        got = await helped.decider.handle(batch(helped))
        assert verifier.batches == 1  # the helper did verify this batch
    finally:
        await verifier.stop()

    def verdicts(outcomes: list[Outcome]) -> list[tuple[object, ...]]:
        return [(o.status, o.reason, o.stream_id, o.stream_version, o.key_id) for o in outcomes]

    assert verdicts(got) == verdicts(expected)
    statuses = [(o.status, o.reason) for o in expected]
    # Odd ones by the late key before its registration are unknown, after it accepted; the
    # team key's after its revocation are refused.
    assert statuses[1] == statuses[3] == ("rejected", "unauthenticated")
    assert statuses[11] == ("accepted", None) and statuses[12] == ("accepted", None)
    assert statuses[26] == ("rejected", "unauthenticated") and statuses[29] == ("accepted", None)
    assert statuses[18] == ("rejected", "unauthenticated")  # forged


async def test_an_anchor_s_key_is_registered_only_as_the_anchor_it_is() -> None:
    """Registering the gateway's public key first, as a team key of someone, would let the
    log (which decides over configuration) make the gateway act as that someone."""
    scene = await Scene().set_up()
    as_team = register(GATEWAY, TEAM_A)
    as_decider = register(GATEWAY, ANCHOR_PRINCIPALS["decider"].model_dump(), "decider")
    refused = await scene.decider.handle(
        [scene.topic.message(scene.decider, c) for c in (as_team, as_decider)]
    )
    assert [o.reason for o in refused] == [Reason.FORBIDDEN.value] * 2
    assert key_stream_id(GATEWAY.key_id) not in scene.decider.state.streams
    own = self_registration(GATEWAY.public_key, "gateway")
    assert (await scene.send(signed(GATEWAY, own), own.stream_id)).status == "accepted"


class HonestHelper:
    """A verifier helper that has answered every job before the decider asks (as a fast
    helper process does), verifying each for real, in this process."""

    def __init__(self) -> None:
        self.answers: list[bool] = []

    async def submit(self, jobs: Sequence[Job]) -> bool:
        self.answers = [bool(b) for b in verify_all(jobs)]
        return True

    def verified(self, index: int) -> bool | None:
        return self.answers[index] if index < len(self.answers) else None

    def finish(self) -> None:
        self.answers = []


async def test_the_decider_takes_the_helper_s_answers_and_verifies_only_what_it_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scene = await Scene().set_up()
    late_key = fixed_signer(6)
    verified_here: list[str] = []
    real = Decider._verifies

    def counting(decider: Decider, signed: SignedCommand, key: KeyState) -> bool:
        verified_here.append(key.key_id)
        return real(decider, signed, key)

    monkeypatch.setattr(Decider, "_verifies", counting)
    scene.decider.verifier = HonestHelper()  # type: ignore[assignment]
    forged = orjson.loads(signed(OTHER_KEY, scene.evidence_doc("e0")))
    messages = [
        scene.topic.raw(
            scene.decider, scene.rec_id, orjson.dumps({**forged, "key_id": TEAM_KEY.key_id})
        ),
        *(
            scene.topic.raw(
                scene.decider, scene.rec_id, signed(TEAM_KEY, scene.evidence_doc(f"e{n}"))
            )
            for n in range(1, 20)
        ),
        scene.topic.message(scene.decider, register(late_key, TEAM_A)),
        scene.topic.raw(scene.decider, scene.rec_id, signed(late_key, scene.evidence_doc("e20"))),
    ]
    outcomes = await scene.decider.handle(messages)
    assert outcomes[0].reason == Reason.UNAUTHENTICATED.value  # the helper said no
    assert {o.status for o in outcomes[1:]} == {"accepted"}
    # Only the late key's command (its key unknown when the batch began) was verified here;
    # every other answer, the gateway's registration of the late key included, was the helper's.
    assert verified_here == [late_key.key_id]
