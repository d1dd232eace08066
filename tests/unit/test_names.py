"""Natural input (issue 16): names a person types, the stable ids derived from them, and the
commands, events and papers that carry both."""

from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.committee import CommitteeUpdateRecorded
from events.names import ID_MAX, NoId, derive_id, id_key, is_id
from events.recommendation import OwnerAssigned
from events.registry import parse_event, parse_event_data
from projections.recommendations.history import describe
from projections.recommendations.report import Committee, CommitteeUpdate, since_note
from services.domain.commands import InvalidCommand, parse_command
from services.domain.decide import Accepted
from services.paper.render import rebuild_command, render_markdown
from tests.builders import ADMIN, command, contributor, issue, publish, rec_command
from tests.unit.test_decide import REC, owned_recommendation, rejected
from tests.unit.test_paper import paper
from tests.world import World

PPC = "Policing Performance Committee"


# --- The derivation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (PPC, "policing-performance-committee"),
        ("POLICING performance Committee", "policing-performance-committee"),  # case
        ("  Policing   Performance\tCommittee ", "policing-performance-committee"),  # spaces
        ("Policing-Performance-Committee", "policing-performance-committee"),
        ("policing_performance_committee", "policing-performance-committee"),
        ("Audit, Risk & Assurance Committee", "audit-risk-and-assurance-committee"),  # "&"
        ("Audit, Risk and Assurance Committee", "audit-risk-and-assurance-committee"),
        ("Resources Committee (SPA).", "resources-committee-spa"),  # punctuation
        ("People — Committee: 2024/25", "people-committee-2024-25"),
        ("Chief Constable's Forum", "chief-constables-forum"),  # apostrophe joins
        ("Chief Constable’s Forum", "chief-constables-forum"),  # typographic apostrophe
        ("Comhairle nan Eilean Siar — Pàrtaidh", "comhairle-nan-eilean-siar-partaidh"),
        ("Café Sécurité", "cafe-securite"),  # diacritics folded
        ("Straße Æsir Ørsted Łódź", "strasse-aesir-orsted-lodz"),  # letters NFKD keeps whole
        ("ﬁnance Ｔｅａｍ", "finance-team"),  # compatibility forms
        ("Team ½", "team-1-2"),
        ("spa-ppc", "spa-ppc"),  # an id is its own id
        ("a--b", "a--b"),  # even one the derivation would not make
        ("team-a", "team-a"),
    ],
)
def test_a_name_derives_one_id(given: str, expected: str) -> None:
    assert derive_id(given) == expected
    assert derive_id(expected) == expected  # id -> id


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "no letter or digit"),
        ("   ", "no letter or digit"),
        ("!!! — ...", "no letter or digit"),
        ("&'’", "and"),  # "&" alone reads as the word "and": an id, not a refusal
        ("Ελληνική Επιτροπή", "no ASCII spelling"),
        ("Comité 日本", "no ASCII spelling"),
        ("x" * (ID_MAX + 1), f"at most {ID_MAX}"),
    ],
)
def test_text_that_makes_no_id_says_why(given: str, why: str) -> None:
    if why == "and":
        assert derive_id(given) == "and"
        return
    with pytest.raises(NoId, match=why):
        derive_id(given)


def test_the_longest_id_is_kept_whole() -> None:
    longest = "Ab " * 26 + "Cd"
    assert len(derive_id(longest)) == ID_MAX == 80
    with pytest.raises(NoId):
        derive_id(longest + "e")


def test_names_that_make_no_id_still_compare_as_themselves() -> None:
    assert id_key("Team A") == id_key("team-a") == "team-a"
    assert id_key("Ομάδα") == "Ομάδα" != id_key("Ομάδα Β")


@given(st.text(max_size=120))
def test_any_text_makes_an_id_or_says_why_and_deriving_is_idempotent(text: str) -> None:
    try:
        derived = derive_id(text)
    except NoId as exc:
        assert str(exc)
    else:
        assert is_id(derived)
        assert derive_id(derived) == derived


words = st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=6)
separators = st.from_regex(r"[ \t,.;:!?()/\-–—_]{1,4}", fullmatch=True)


@given(words, separators, st.booleans())
def test_case_and_separators_never_change_the_id(
    parts: list[str], separator: str, upper: bool
) -> None:
    text = separator.join(p.upper() if upper else p for p in parts)
    assert derive_id(f"{separator}{text}{separator}") == "-".join(p.lower() for p in parts)


# --- Commands -------------------------------------------------------------------------------


def committee_update(committee: object, meeting: str = "2024-09-18") -> dict[str, Any]:
    return {
        "type": "RecordCommitteeUpdate",
        "actor": ADMIN,
        "effective_date": meeting,
        "data": {"committee": committee, "meeting_date": meeting, "title": "Improvement update"},
    }


def refused_fields(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(doc)
    return {e["field"]: e["reason"] for e in caught.value.errors}


def test_a_committee_given_by_its_name_is_accepted_with_its_id_and_name() -> None:
    cmd = parse_command(committee_update(f"  {PPC} "))
    assert cmd.stream_id == "committee:policing-performance-committee"
    verdict = World().run(cmd)
    assert isinstance(verdict, Accepted)
    event = verdict.event
    assert isinstance(event, CommitteeUpdateRecorded)
    assert (event.committee, event.committee_name) == ("policing-performance-committee", PPC)


def test_a_committee_given_by_its_id_works_as_before() -> None:
    cmd = parse_command(committee_update("spa-ppc"))
    assert cmd.stream_id == "committee:spa-ppc"
    verdict = World().run(cmd)
    assert isinstance(verdict, Accepted)
    assert verdict.event.model_dump()["committee"] == "spa-ppc"


def test_by_name_and_by_id_a_committee_is_one_stream() -> None:
    world = World()
    assert isinstance(world.run(parse_command(committee_update(PPC, "2024-06-12"))), Accepted)
    again = parse_command(committee_update("policing-performance-committee", "2024-06-12"))
    assert rejected(world.run(again)) == "committee_update_exists"
    other_case = parse_command(committee_update("POLICING PERFORMANCE COMMITTEE", "2024-06-12"))
    assert rejected(world.run(other_case)) == "committee_update_exists"
    later = parse_command(committee_update("policing-performance-committee", "2024-09-18"))
    assert isinstance(world.run(later), Accepted)


@pytest.mark.parametrize(
    ("committee", "reason"),
    [
        ("", "at least 1 character"),
        ("   ", "at least 1 character"),
        ("!!!", "no letter or digit"),
        ("Επιτροπή", "no ASCII spelling"),
        ("Policing\nPerformance", "control character"),
        (None, "valid string"),
        (42, "valid string"),
    ],
)
def test_a_committee_that_makes_no_id_is_refused_naming_the_field(
    committee: object, reason: str
) -> None:
    errors = refused_fields(committee_update(committee))
    assert list(errors) == ["data.committee"]
    assert reason in errors["data.committee"]


def test_an_owner_team_given_by_its_name_owns_by_its_id() -> None:
    name = "Partnerships, Prevention & Community Wellbeing"
    team_id = "partnerships-prevention-and-community-wellbeing"  # "&" reads as "and"
    world = World().given([publish("hate-crime-2021"), issue("hate-crime-2021", 1)])
    verdict = world.run(rec_command("AssignOwner", REC, team=name, owner_role="Lead"))
    assert isinstance(verdict, Accepted)
    event = verdict.event
    assert isinstance(event, OwnerAssigned)
    assert (event.team, event.team_name) == (team_id, name)
    # A contributor whose token names the team either way acts for it; another team does not.
    for team in (team_id, name.upper(), "Partnerships, Prevention and Community Wellbeing"):
        position = rec_command(
            "ReportProgress",
            REC,
            contributor(team),
            position="Training delivered",
            delivery_status="on_track",
        )
        assert isinstance(world.run(position), Accepted), team
    stranger = rec_command(
        "ReportProgress", REC, contributor("team-b"), position="p", delivery_status="on_track"
    )
    assert rejected(world.run(stranger)) == "forbidden"
    handed_on = rec_command("AssignOwner", REC, team="Team B", owner_role="Lead")
    verdict = world.run(handed_on)
    assert isinstance(verdict, Accepted)
    assert verdict.event.model_dump()["previous_team"] == team_id


def test_an_owner_team_given_by_its_id_is_recorded_as_before() -> None:
    world = owned_recommendation()  # assigned to "team-a"
    event = world.log[-1].data
    assert isinstance(event, OwnerAssigned)
    assert (event.team, event.team_name) == ("team-a", "team-a")


@pytest.mark.parametrize("team", ["", "---", "チーム"])
def test_an_owner_team_that_makes_no_id_is_refused_naming_the_field(team: str) -> None:
    doc = {
        "type": "AssignOwner",
        "actor": ADMIN,
        "data": {"recommendation_id": REC, "team": team, "owner_role": "Lead"},
    }
    assert list(refused_fields(doc)) == ["data.team"]


@pytest.mark.parametrize("type_", ["PublishInspection", "IssueRecommendation"])
def test_an_inspection_id_stays_an_id_and_its_refusal_suggests_one(type_: str) -> None:
    data: dict[str, Any]
    if type_ == "PublishInspection":
        data = {"title": "Hate Crime", "inspectorate": "HMICS", "published_on": "2021-06-03"}
    else:
        data = {"number": 1, "text": "Do it"}
    doc = {"type": type_, "actor": ADMIN, "data": {**data, "inspection_id": "Hate Crime 2021"}}
    errors = refused_fields(doc)
    assert list(errors) == ["data.inspection_id"]
    assert "did you mean 'hate-crime-2021'?" in errors["data.inspection_id"]
    garbage = refused_fields({**doc, "data": {**data, "inspection_id": "???"}})
    assert "is not an id" in garbage["data.inspection_id"]
    assert "did you mean" not in garbage["data.inspection_id"]
    ok = command(type_, {**data, "inspection_id": "hate-crime-2021"}, actor=ADMIN)
    assert ok.stream_id.startswith("hate-crime-2021")


# --- Events: version 2, and version 1 read as version 2 --------------------------------------


def v1_event(type_: str, data: dict[str, Any], stream: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": "7d1b2a4c-0000-4000-8000-000000000001",
            "type": type_,
            "schema_version": 1,
            "stream_id": stream,
            "stream_version": 1,
            "effective_date": "2024-06-12",
            "recorded_at": "2024-06-12T12:00:00+00:00",
            "command_id": "7d1b2a4c-0000-4000-8000-000000000002",
            "correlation_id": "7d1b2a4c-0000-4000-8000-000000000003",
            "actor": ADMIN,
            "data": data,
            "prev_hash": None,
            "hash": "",
        }
    )


def test_version_1_committee_updates_and_owners_read_as_version_2_with_no_name() -> None:
    update = parse_event(
        v1_event(
            "CommitteeUpdateRecorded",
            {"committee": "spa-ppc", "meeting_date": "2024-06-12", "title": "Update"},
            "committee:spa-ppc",
        )
    )
    assert update.schema_version == 2
    assert isinstance(update.data, CommitteeUpdateRecorded)
    assert (update.data.committee, update.data.committee_name) == ("spa-ppc", None)
    owner = parse_event(
        v1_event(
            "OwnerAssigned",
            {"recommendation_id": REC, "team": "Team A", "owner_role": "Lead"},
            REC,
        )
    )
    assert owner.schema_version == 2
    assert isinstance(owner.data, OwnerAssigned)
    assert (owner.data.team, owner.data.team_name) == ("Team A", None)  # as it was written


def test_new_events_are_written_as_version_2() -> None:
    world = World()
    world.run(parse_command(committee_update(PPC)))
    assert world.log[-1].schema_version == 2
    assert world.log[-1].model_dump(mode="json")["data"]["committee_name"] == PPC


def test_history_shows_the_name_where_one_was_given() -> None:
    named = parse_event_data(
        "CommitteeUpdateRecorded",
        {
            "committee": "policing-performance-committee",
            "committee_name": PPC,
            "meeting_date": "2024-06-12",
            "title": "Update",
        },
    )
    assert describe(named).startswith(f"{PPC} received")
    unnamed = CommitteeUpdateRecorded(
        committee="spa-ppc", meeting_date=date(2024, 6, 12), title="U"
    )
    assert describe(unnamed).startswith("spa-ppc received")
    owner = OwnerAssigned(recommendation_id=REC, team="team-b", team_name="Team B", owner_role="L")
    assert "Assigned to Team B (L)" in describe(owner)


# --- "Since the last update": never silent ---------------------------------------------------

AS_OF = date(2024, 9, 18)
NAMED = Committee(committee="policing-performance-committee", committee_name=PPC)
UPDATE = CommitteeUpdate(**NAMED.model_dump(), meeting_date=date(2024, 6, 12), title="Update")


def test_the_since_note_names_the_update_it_starts_from() -> None:
    note = since_note(
        as_of=AS_OF, since=UPDATE.meeting_date, basis="committee_update", committee=NAMED,
        update=UPDATE,
    )  # fmt: skip
    assert "since 12 June 2024, the last update to Policing Performance Committee" in note


def test_the_since_note_says_when_there_is_no_earlier_update() -> None:
    for committee, whose in ((NAMED, f"to {PPC}"), (None, "to any committee")):
        note = since_note(
            as_of=AS_OF, since=None, basis="no_earlier_update", committee=committee, update=None
        )
        assert note.startswith(f"No earlier update {whose} is recorded before 18 September 2024")
        assert "since each inspection’s publication" in note


def test_the_since_note_of_a_date_given() -> None:
    note = since_note(
        as_of=AS_OF, since=date(2024, 1, 1), basis="given", committee=None, update=None
    )
    assert "since 01 January 2024, the date asked for" in note


def test_the_paper_shows_the_committee_by_name_and_rebuilds_by_id() -> None:
    note = "No earlier update to Policing Performance Committee is recorded before …"
    named = paper(committee="policing-performance-committee", committee_name=PPC, since_note=note)
    md = render_markdown(named)
    assert f"Committee: {PPC}." in md
    assert "No earlier update to Policing Performance Committee" in md
    assert "--committee policing-performance-committee" in rebuild_command(named)
    assert "Committee: spa-ppc." in render_markdown(paper(committee="spa-ppc"))
