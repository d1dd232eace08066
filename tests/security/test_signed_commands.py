"""Issue 14, part 2: commands are signed, and the actor comes from the key, on the real stack.

The attacks of the issue's "Why", as a plain Kafka client on the same network makes them,
are refused as `unauthenticated` and change nothing; a team's own system with a key an admin
registered acts as the key's principal and nobody else; a revoked key is refused; an accepted
command's event carries its signature, which verifies against the key's registration in the
log, and the history names the key's principal.
"""

import base64
import stat
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.ed25519 import encode_public_key
from events.envelope import Envelope
from events.registry import parse_event
from events.signing import verify_command_signature
from events.streams import key_stream_id
from infra.kafka_clients import read_messages, read_topic
from infra.settings import Settings
from projections.lag import wait_until_projected
from projections.recommendations.projection import RECOMMENDATIONS
from services.decider.gateway import CommandGateway
from services.decider.keys import gateway_signer
from tests.builders import INSPECTOR, contributor, issue, publish, rec_command
from tests.cli import rectrack
from tests.e2e.helpers import bearer
from tests.signing import TeamProducer, new_signer, register_key

pytestmark = pytest.mark.integration

TODAY = date.today().isoformat()


class Scene:
    """An inspection with one recommendation owned by a team of its own."""

    def __init__(self) -> None:
        self.insp = publish(f"signed-{uuid.uuid4().hex[:10]}")
        self.rec = issue(self.insp.stream_id, 1)
        self.rec_id = self.rec.stream_id
        self.team = f"team-{uuid.uuid4().hex[:6]}"
        self.contributor = contributor(self.team)

    async def set_up(self, gateway: CommandGateway) -> "Scene":
        owner = rec_command("AssignOwner", self.rec_id, team=self.team, owner_role="lead")
        outcomes = await gateway.submit([self.insp, self.rec, owner], timeout=60)
        assert {o.status for o in outcomes.values()} == {"accepted"}, outcomes
        return self

    def doc(self, type_: str, data: dict[str, Any], **top: Any) -> dict[str, Any]:
        """A command document as a team's system writes it, with a fresh command id."""
        return {
            "type": type_,
            "command_id": str(uuid.uuid4()),
            "data": {"recommendation_id": self.rec_id, **data},
            "effective_date": "2024-07-01",
            **top,
        }

    def evidence(self, evidence_id: str = "e1", **top: Any) -> dict[str, Any]:
        return self.doc(
            "SubmitEvidence", {"evidence_id": evidence_id, "summary": "Training delivered"}, **top
        )

    def proposal(self, **top: Any) -> dict[str, Any]:
        return self.doc("ProposeClosure", {"rationale": "Done", "evidence_ids": ["e1"]}, **top)

    def closure(self, **top: Any) -> dict[str, Any]:
        return self.doc(
            "RecordInspectorateDecision", {"decision": "closed", "rationale": "Met"}, **top
        )


async def events_of(settings: Settings, stream_id: str) -> list[Envelope]:
    return [
        e
        for r in await read_topic(settings, settings.topics.events)
        if (e := parse_event(r.value)).stream_id == stream_id
    ]


async def report_line(api: httpx.AsyncClient, inspection_id: str) -> Any:
    response = await api.get("/report", params={"as_of": TODAY, "inspection": inspection_id})
    assert response.status_code == 200, response.text
    return response.json()["inspections"]


async def outcomes_of(
    gateway: CommandGateway, docs: list[dict[str, Any]]
) -> dict[str, tuple[str, str | None]]:
    ids = [uuid.UUID(d["command_id"]) for d in docs]
    outcomes = await gateway.wait_for(ids, timeout=60)
    assert outcomes.keys() == set(ids), "a command got no outcome"
    return {str(cid): (o.status, o.reason) for cid, o in outcomes.items()}


def who_column(table: str) -> str:
    """The text of the history table's "who" column, its wrapped lines joined by spaces."""
    cells = [line.split("│")[4].strip() for line in table.splitlines() if line.count("│") == 6]
    return " ".join(cell for cell in cells if cell)


async def test_unsigned_commands_claiming_a_contributor_then_an_inspector_close_nothing(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    """The issue's first attack: a plain producer, no key, the owner team's and then the
    inspectorate's identity written into the messages."""
    scene = await Scene().set_up(gateway)
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=30, headers=await bearer(pool, "viewer")
    ) as api:
        await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
        before = await report_line(api, scene.insp.stream_id)
        attack = [
            scene.evidence(actor=scene.contributor),
            scene.proposal(actor=scene.contributor),
            scene.closure(actor=INSPECTOR),
        ]
        async with TeamProducer(stack, new_signer()) as plain:
            for doc in attack:
                await plain.send_raw(scene.rec_id, orjson.dumps(doc))
        outcomes = await outcomes_of(gateway, attack)
        assert set(outcomes.values()) == {("rejected", "unauthenticated")}
        await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
        assert await report_line(api, scene.insp.stream_id) == before
        history = (await api.get(f"/recommendations/{scene.rec_id}/history")).json()
    assert [e.type for e in await events_of(stack, scene.rec_id)] == [
        "RecommendationIssued",
        "OwnerAssigned",
    ]
    assert [h["type"] for h in history] == ["RecommendationIssued", "OwnerAssigned"]
    # Each one is kept in the dead letters, as it was sent, with the reason.
    dead = [orjson.loads(m.value) for m in await read_messages(stack, stack.topics.dead_letters)]
    for doc in attack:
        (letter,) = [d for d in dead if base64.b64decode(d["value_base64"]) == orjson.dumps(doc)]
        assert letter["reason"].startswith("unauthenticated: not a signed command")


async def test_a_contributor_s_key_whose_command_claims_the_inspector_role_closes_nothing(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    scene = await Scene().set_up(gateway)
    key = new_signer()
    await register_key(
        stack.api_url, await bearer(pool, "admin", "secretariat"), key, scene.contributor
    )
    async with TeamProducer(stack, key) as team:
        as_itself = [scene.evidence(), scene.proposal()]  # its own work, as itself: accepted
        for doc in as_itself:
            await team.send(scene.rec_id, doc)
        assert set((await outcomes_of(gateway, as_itself)).values()) == {("accepted", None)}
        claims = [scene.closure(actor=INSPECTOR), scene.closure()]
        for doc in claims:
            await team.send(scene.rec_id, doc)
    outcomes = await outcomes_of(gateway, claims)
    assert outcomes[claims[0]["command_id"]] == ("rejected", "actor_mismatch")
    assert outcomes[claims[1]["command_id"]] == ("rejected", "forbidden")  # its own role
    types = [e.type for e in await events_of(stack, scene.rec_id)]
    assert "InspectorateDecisionRecorded" not in types
    assert types[-2:] == ["EvidenceSubmitted", "ClosureProposed"]


async def test_a_revoked_key_is_refused(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool
) -> None:
    scene = await Scene().set_up(gateway)
    admin = await bearer(pool, "admin", "secretariat")
    key = new_signer()
    await register_key(stack.api_url, admin, key, scene.contributor)
    async with TeamProducer(stack, key) as team:
        first = scene.evidence("e1")
        await team.send(scene.rec_id, first)
        assert await outcomes_of(gateway, [first]) == {first["command_id"]: ("accepted", None)}
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
            revoked = await api.post(
                "/commands",
                json={
                    "type": "RevokeSigningKey",
                    "data": {"key_id": key.key_id, "reason": "the laptop was stolen"},
                },
                headers=admin,
            )
        assert revoked.status_code == 201, revoked.text
        after = scene.evidence("e2")
        await team.send(scene.rec_id, after)
    assert await outcomes_of(gateway, [after]) == {
        after["command_id"]: ("rejected", "unauthenticated")
    }
    evidence = [
        e.data.model_dump()["evidence_id"]
        for e in await events_of(stack, scene.rec_id)
        if e.type == "EvidenceSubmitted"
    ]
    assert evidence == ["e1"]
    key_events = await events_of(stack, key_stream_id(key.key_id))
    assert [e.type for e in key_events] == ["SigningKeyRegistered", "SigningKeyRevoked"]
    assert key_events[1].actor.role == "admin"


async def test_a_registered_team_key_s_command_is_accepted_verifies_and_its_principal_shows(
    stack: Settings, gateway: CommandGateway, pool: asyncpg.Pool, run_env: dict[str, str]
) -> None:
    scene = await Scene().set_up(gateway)
    key = new_signer()
    await register_key(
        stack.api_url, await bearer(pool, "admin", "secretariat"), key, scene.contributor
    )
    doc = scene.evidence()  # no actor: the key says who acts
    async with TeamProducer(stack, key) as team:
        await team.send(scene.rec_id, doc)
    assert await outcomes_of(gateway, [doc]) == {doc["command_id"]: ("accepted", None)}

    event = next(
        e for e in await events_of(stack, scene.rec_id) if str(e.command_id) == doc["command_id"]
    )
    assert event.actor.model_dump() == scene.contributor
    signature = event.command_signature
    assert signature is not None and signature.key_id == key.key_id
    assert orjson.loads(signature.payload) == doc  # the payload exactly as the team sent it
    # The public key to check it with comes from the log, not from the test's key pair.
    (registration,) = await events_of(stack, key_stream_id(key.key_id))
    registered = registration.data.model_dump()
    assert registered["principal"] == scene.contributor and registered["kind"] == "team"
    assert registered["public_key"] == encode_public_key(key.public_key)
    assert verify_command_signature(signature, registered["public_key"])
    assert not verify_command_signature(
        signature.model_copy(update={"payload": signature.payload.replace("e1", "e9")}),
        registered["public_key"],
    )

    await wait_until_projected(stack, RECOMMENDATIONS, timeout=60)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        history = (
            await api.get(
                f"/recommendations/{scene.rec_id}/history",
                headers=await bearer(pool, "viewer"),
            )
        ).json()
    (entry,) = [h for h in history if h["type"] == "EvidenceSubmitted"]
    assert entry["actor"] == scene.contributor
    cli = orjson.loads(rectrack(run_env, "history", scene.rec_id, "--format", "json").stdout)
    (cli_entry,) = [h for h in cli if h["type"] == "EvidenceSubmitted"]
    assert cli_entry["actor"] == scene.contributor
    table = rectrack(run_env, "history", scene.rec_id).stdout
    assert f"{scene.contributor['name']} ({scene.team}, contributor)" in who_column(table)


async def test_the_stack_s_own_keys_are_private_and_the_gateway_s_is_in_the_log(
    stack: Settings, gateway: CommandGateway
) -> None:
    assert stat.S_IMODE(stack.keys_dir.stat().st_mode) == 0o700
    for path in (stack.gateway_key_file, stack.decider_key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    signer = gateway_signer(stack)
    (registration,) = await events_of(stack, key_stream_id(signer.key_id))
    assert registration.data.model_dump()["kind"] == "gateway"
    # Registered by itself: the key's own signature over its own registration.
    assert registration.command_signature is not None
    assert registration.command_signature.key_id == signer.key_id
    assert verify_command_signature(registration.command_signature, signer.public_key)
