"""The handover pack and the recommendation page link the evidence's documents themselves."""

from datetime import UTC, date, datetime
from uuid import uuid4

from events.envelope import Actor, EventData
from events.recommendation import Document, EvidenceSubmitted, RecommendationIssued
from projections.recommendations.handover import (
    DOCUMENT_PATH,
    EvidenceDocument,
    build_handover,
    handover_markdown,
)
from projections.recommendations.history import HistoryEntry, describe
from services.web.dashboard import templates
from services.web.routes.documents import router
from tests.documents import PDF

SHA = "cd" * 32
LEGACY = "ef" * 32


def entry(version: int, data: EventData) -> HistoryEntry:
    return HistoryEntry(
        stream_version=version,
        event_id=uuid4(),
        type=type(data).__name__,
        summary=describe(data),
        effective_date=date(2024, 5, 1),
        recorded_at=datetime(2024, 5, 1, tzinfo=UTC),
        actor=Actor(name="Lead", team="team-a", role="contributor"),
        data=data,
    )


def pack_entries() -> list[HistoryEntry]:
    return [
        entry(
            1, RecommendationIssued(recommendation_id="h/r1", inspection_id="h", number=1, text="t")
        ),
        entry(
            2,
            EvidenceSubmitted(
                recommendation_id="h/r1",
                evidence_id="esf-1",
                summary="Training delivered",
                documents=(
                    Document(name="ESF [final].pdf", sha256=SHA, size=1_258_291, media_type=PDF),
                    Document(name="old.pdf", sha256=LEGACY),
                ),
            ),
        ),
    ]


def test_the_pack_links_each_held_document_with_its_name_kind_and_size() -> None:
    pack = build_handover("h/r1", pack_entries(), as_of=date(2024, 6, 1))
    held, legacy = pack.evidence[0].documents
    assert held == EvidenceDocument(
        name="ESF [final].pdf", sha256=SHA, size=1_258_291, media_type=PDF, href=f"/documents/{SHA}"
    )
    assert held.facts() == "PDF, 1.2 MB"
    assert (legacy.href, legacy.facts()) == (None, "cited by hash only")

    markdown = handover_markdown(pack, base_url="http://localhost:8000")
    assert (
        f"  - document [ESF \\[final\\].pdf](http://localhost:8000/documents/{SHA}) "
        f"(PDF, 1.2 MB) sha256 {SHA}"
    ) in markdown
    assert f"  - document old.pdf (cited by hash only) sha256 {LEGACY}" in markdown


def test_the_links_point_at_the_download_route() -> None:
    paths = {getattr(route, "path", None) for route in router.routes}
    assert DOCUMENT_PATH in paths


def test_the_recommendation_page_links_the_documents() -> None:
    pack = build_handover("h/r1", pack_entries(), as_of=date(2024, 6, 1))
    html = (
        templates()
        .get_template("recommendation.html.j2")
        .render(entries=pack_entries(), pack=pack, as_of=date(2024, 6, 1), inspection_id="h")
    )
    assert (
        f'<a class="govuk-link" href="/documents/{SHA}" download>ESF [final].pdf</a> (PDF, 1.2 MB)'
        in html
    )
    assert "old.pdf (cited by hash only)" in html
    assert f'href="/documents/{LEGACY}"' not in html
