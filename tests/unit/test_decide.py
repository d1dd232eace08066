"""Given events, when a command, then an event or a rejection with a stable reason."""

from datetime import date
from uuid import uuid4

import pytest

from events.registry import event_type_name
from services.domain.decide import Accepted, Rejected, Verdict
from tests.builders import ADMIN, INSPECTOR, command, contributor, issue, publish, rec_command
from tests.world import TODAY, World

INSP = "hate-crime-2021"
REC = f"{INSP}/r1"


def owned_recommendation() -> World:
    return World().given(
        [
            publish(INSP),
            issue(INSP, 1),
            rec_command("AssignOwner", REC, team="team-a", owner_role="Superintendent"),
        ]
    )


def with_pending_proposal() -> World:
    """An owned recommendation with evidence esf-1 submitted and proposed for closure."""
    return owned_recommendation().given(
        [
            rec_command("SubmitEvidence", REC, contributor(), evidence_id="esf-1", summary="ESF"),
            rec_command(
                "ProposeClosure", REC, contributor(), rationale="met", evidence_ids=["esf-1"]
            ),
        ]
    )


def rejected(verdict: Verdict) -> str:
    assert isinstance(verdict, Rejected), verdict
    return verdict.reason.value


def test_publishing_an_inspection_gives_inspection_published() -> None:
    verdict = World().run(publish(INSP))
    assert isinstance(verdict, Accepted)
    assert event_type_name(verdict.event) == "InspectionPublished"


def test_a_recommendation_needs_its_inspection() -> None:
    assert rejected(World().run(issue("unknown-inspection", 1))) == "inspection_not_found"


def test_a_recommendation_number_is_unique_per_inspection_and_kind() -> None:
    world = World().given([publish(INSP), issue(INSP, 1)])
    assert rejected(world.run(issue(INSP, 1))) == "recommendation_number_taken"
    assert isinstance(world.run(issue(INSP, 1, kind="area_for_development")), Accepted)


def test_publishing_twice_is_rejected() -> None:
    world = World().given([publish(INSP)])
    assert rejected(world.run(publish(INSP))) == "inspection_already_published"


def test_progress_on_unknown_recommendation_is_rejected() -> None:
    cmd = rec_command("ReportProgress", "nope/r1", position="x", delivery_status="on_track")
    assert rejected(World().run(cmd)) == "recommendation_not_found"


def test_closing_needs_a_pending_proposal() -> None:
    world = owned_recommendation()
    close = rec_command(
        "RecordInspectorateDecision", REC, INSPECTOR, decision="closed", rationale="done"
    )
    assert rejected(world.run(close)) == "no_closure_proposed"


def test_full_closure_path_then_nothing_but_reading() -> None:
    world = with_pending_proposal().given(
        [
            rec_command(
                "RecordInspectorateDecision",
                REC,
                INSPECTOR,
                decision="closed",
                rationale="evidence of improvement",
            ),
        ]
    )
    after = rec_command("ReportProgress", REC, ADMIN, position="more", delivery_status="on_track")
    assert rejected(world.run(after)) == "recommendation_closed"


def test_superseded_needs_no_proposal_and_ends_the_recommendation() -> None:
    world = owned_recommendation()
    supersede = rec_command(
        "RecordInspectorateDecision",
        REC,
        INSPECTOR,
        decision="superseded",
        rationale="covered by the 2025 inspection",
    )
    assert isinstance(world.run(supersede), Accepted)
    again = rec_command(
        "RecordInspectorateDecision", REC, INSPECTOR, decision="kept_open", rationale="x"
    )
    assert rejected(world.run(again)) == "recommendation_closed"


def test_a_proposal_needs_submitted_evidence_and_none_pending() -> None:
    world = owned_recommendation()
    propose = rec_command(
        "ProposeClosure", REC, contributor(), rationale="met", evidence_ids=["esf-9"]
    )
    assert rejected(world.run(propose)) == "evidence_not_found"
    world.given(
        [
            rec_command("SubmitEvidence", REC, contributor(), evidence_id="esf-9", summary="ESF"),
            propose,
        ]
    )
    again = rec_command(
        "ProposeClosure", REC, contributor(), rationale="again", evidence_ids=["esf-9"]
    )
    assert rejected(world.run(again)) == "closure_already_proposed"


def test_kept_open_clears_the_pending_proposal() -> None:
    world = with_pending_proposal().given(
        [
            rec_command(
                "RecordInspectorateDecision",
                REC,
                INSPECTOR,
                decision="kept_open",
                rationale="evidence of impact needed",
            ),
        ]
    )
    close = rec_command(
        "RecordInspectorateDecision", REC, INSPECTOR, decision="closed", rationale="x"
    )
    assert rejected(world.run(close)) == "no_closure_proposed"


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (contributor("team-a"), True),
        (contributor("team-b"), False),
        (ADMIN, True),
        (INSPECTOR, False),
        ({"name": "v", "team": "team-a", "role": "viewer"}, False),
    ],
)
def test_only_the_owning_team_or_an_admin_reports_progress(
    actor: dict[str, str], allowed: bool
) -> None:
    cmd = rec_command("ReportProgress", REC, actor, position="p", delivery_status="on_track")
    verdict = owned_recommendation().run(cmd)
    assert isinstance(verdict, Accepted) if allowed else rejected(verdict) == "forbidden"


def test_contributors_cannot_record_inspectorate_decisions() -> None:
    cmd = rec_command(
        "RecordInspectorateDecision", REC, contributor(), decision="kept_open", rationale="x"
    )
    assert rejected(owned_recommendation().run(cmd)) == "forbidden"


def test_expected_version_must_match() -> None:
    world = owned_recommendation()  # REC is at version 2
    stale = rec_command("ReportProgress", REC, ADMIN, position="p", delivery_status="on_track")
    stale = stale.model_copy(update={"expected_version": 1})
    assert rejected(world.run(stale)) == "version_conflict"
    fresh = stale.model_copy(update={"expected_version": 2})
    assert isinstance(world.run(fresh), Accepted)


@pytest.mark.parametrize(
    ("effective", "reason"),
    [
        (date(2024, 9, 19), "effective_date_in_future"),
        (date(2023, 12, 31), "effective_date_before_publication"),
        (date(2024, 5, 31), "effective_date_out_of_order"),
    ],
)
def test_effective_date_rules(effective: date, reason: str) -> None:
    world = owned_recommendation()  # latest effective date 2024-06-01
    cmd = command(
        "ReportProgress",
        {"recommendation_id": REC, "position": "p", "delivery_status": "on_track"},
        actor=ADMIN,
        effective_date=effective,
    )
    assert rejected(world.run(cmd)) == reason


def test_target_date_revisions_keep_the_original() -> None:
    world = owned_recommendation()
    first = rec_command(
        "SetTargetDate",
        REC,
        contributor(),
        target_date="2024-12-31",
        reason="plan",
        agreed_with_inspectorate=True,
    )
    second = rec_command(
        "SetTargetDate",
        REC,
        contributor(),
        target_date="2025-06-30",
        reason="COS delayed",
        agreed_with_inspectorate=True,
    )
    world.given([first])
    verdict = world.run(second)
    assert isinstance(verdict, Accepted)
    event = verdict.event
    assert getattr(event, "original_target_date") == date(2024, 12, 31)  # noqa: B009
    assert getattr(event, "revision") == 1  # noqa: B009


def test_handover_records_the_previous_owner() -> None:
    world = owned_recommendation()
    verdict = world.run(
        rec_command("AssignOwner", REC, team="team-b", owner_role="Chief Inspector")
    )
    assert isinstance(verdict, Accepted)
    assert getattr(verdict.event, "previous_team") == "team-a"  # noqa: B009


def test_default_effective_date_is_today() -> None:
    verdict = World().run(
        command(
            "PublishInspection",
            {
                "inspection_id": INSP,
                "title": "t",
                "inspectorate": "HMICS",
                "published_on": "2024-01-01",
            },
            effective_date=None,
        )
    )
    assert isinstance(verdict, Accepted)
    assert verdict.effective_date == TODAY


def test_an_inspection_cannot_be_recorded_before_its_publication() -> None:
    cmd = command(
        "PublishInspection",
        {
            "inspection_id": INSP,
            "title": "t",
            "inspectorate": "HMICS",
            "published_on": "2024-03-01",
        },
        effective_date=date(2024, 2, 28),
    )
    assert rejected(World().run(cmd)) == "effective_date_before_publication"


VIEWER = {"name": "Vera", "team": "team-a", "role": "viewer"}


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("AssignOwner", {"team": "team-a", "owner_role": "lead"}),
        (
            "SetTargetDate",
            {"target_date": "2025-01-01", "reason": "r", "agreed_with_inspectorate": False},
        ),
        ("ReportProgress", {"position": "p", "delivery_status": "on_track"}),
        ("SubmitEvidence", {"evidence_id": "e", "summary": "s"}),
        ("RecordInspectorateDecision", {"decision": "kept_open", "rationale": "r"}),
    ],
)
def test_a_viewer_can_only_read(type_: str, data: dict[str, object]) -> None:
    cmd = rec_command(type_, REC, VIEWER, **data)
    assert rejected(owned_recommendation().run(cmd)) == "forbidden"


def test_a_viewer_cannot_publish_or_record_committee_updates() -> None:
    publish_cmd = publish(INSP).model_copy(
        update={"actor": publish(INSP).actor.model_copy(update={"role": "viewer"})}
    )
    assert rejected(World().run(publish_cmd)) == "forbidden"
    update = command(
        "RecordCommitteeUpdate",
        {"committee": "spa-ppc", "meeting_date": "2024-09-18", "title": "t"},
        actor=VIEWER,
    )
    assert rejected(World().run(update)) == "forbidden"


def test_only_an_admin_assigns_owners() -> None:
    world = World().given([publish(INSP), issue(INSP, 1)])
    for actor in (INSPECTOR, contributor()):
        cmd = rec_command("AssignOwner", REC, actor, team="team-a", owner_role="lead")
        assert rejected(world.run(cmd)) == "forbidden"


def test_inspectors_publish_issue_and_decide_but_not_report_progress() -> None:
    world = owned_recommendation()
    progress = rec_command(
        "ReportProgress", REC, INSPECTOR, position="p", delivery_status="on_track"
    )
    assert rejected(world.run(progress)) == "forbidden"


def test_an_evidence_id_is_submitted_once() -> None:
    world = owned_recommendation()
    evidence = rec_command("SubmitEvidence", REC, contributor(), evidence_id="esf-1", summary="s")
    world.given([evidence])
    again = rec_command("SubmitEvidence", REC, contributor(), evidence_id="esf-1", summary="s2")
    assert rejected(world.run(again)) == "evidence_id_taken"


def test_more_evidence_requested_clears_the_pending_proposal() -> None:
    world = owned_recommendation().given(
        [
            rec_command("SubmitEvidence", REC, contributor(), evidence_id="e1", summary="s"),
            rec_command("ProposeClosure", REC, contributor(), rationale="r", evidence_ids=["e1"]),
            rec_command(
                "RecordInspectorateDecision",
                REC,
                INSPECTOR,
                decision="more_evidence_requested",
                rationale="impact?",
            ),
        ]
    )
    propose_again = rec_command(
        "ProposeClosure", REC, contributor(), rationale="r2", evidence_ids=["e1"]
    )
    assert isinstance(world.run(propose_again), Accepted)


def test_a_committee_update_is_recorded_once_per_meeting() -> None:
    update = command(
        "RecordCommitteeUpdate",
        {"committee": "spa-ppc", "meeting_date": "2024-09-18", "title": "t"},
        actor=ADMIN,
    )
    world = World().given([update])
    again = update.model_copy(update={"command_id": uuid4()})
    assert rejected(world.run(again)) == "committee_update_exists"
    by_inspector = update.model_copy(
        update={"actor": update.actor.model_copy(update={"role": "inspector"})}
    )
    assert rejected(World().run(by_inspector)) == "forbidden"


def test_a_file_loaded_by_a_non_admin_is_refused() -> None:
    cmd = publish(INSP)
    loader = cmd.actor.model_copy(update={"role": "contributor"})
    assert rejected(World().run(cmd.model_copy(update={"loaded_by": loader}))) == "forbidden"
    admin = cmd.actor.model_copy(update={"role": "admin"})
    assert isinstance(World().run(cmd.model_copy(update={"loaded_by": admin})), Accepted)


def test_a_contributor_cannot_act_on_an_unowned_recommendation() -> None:
    world = World().given([publish(INSP), issue(INSP, 1)])
    cmd = rec_command("SubmitEvidence", REC, contributor(), evidence_id="e", summary="s")
    assert rejected(world.run(cmd)) == "forbidden"
