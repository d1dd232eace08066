"""What an upload may hold: name, size, declared type and bytes must agree on an allowed kind."""

import io
import zipfile

import pytest

from events.documents import EXTENSIONS, LABELS, MEDIA_TYPES, MediaType, label_of, size_text
from infra.documents.kinds import (
    MAX_CONTENT_TYPES_BYTES,
    DocumentRefused,
    check_document,
    declared_type,
    document_name,
)
from tests.documents import (
    CSV,
    DOCX,
    EXE,
    JPEG,
    MACRO_WORD_MAIN,
    MAIN_PARTS,
    NAMES,
    PDF,
    PNG,
    TXT,
    XLSX,
    office,
    sample,
)

LIMIT = 1000


def refusal(
    filename: str, content_type: str | None, content: bytes, limit: int = LIMIT
) -> DocumentRefused:
    with pytest.raises(DocumentRefused) as caught:
        check_document("documents[0]", filename, content_type, content, limit=limit)
    return caught.value


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
@pytest.mark.parametrize("declared", ["exact", "generic", "absent"])
def test_every_allowed_kind_is_taken_by_its_name_type_and_bytes(
    media_type: MediaType, declared: str
) -> None:
    content_type = {"exact": media_type, "generic": "application/octet-stream", "absent": None}
    checked = check_document(
        "documents[0]", NAMES[media_type], content_type[declared], sample(media_type), limit=10**6
    )
    assert (checked.name, checked.media_type) == (NAMES[media_type], media_type)
    assert checked.size == len(sample(media_type))


@pytest.mark.parametrize("content_type", [PDF, "application/octet-stream", None])
def test_a_program_renamed_pdf_is_refused_naming_the_field_and_the_file(
    content_type: str | None,
) -> None:
    refused = refusal("esf.pdf", content_type, EXE)
    assert refused.problem == "type"
    assert refused.as_error() == {
        "field": "documents[0]",
        "file": "esf.pdf",
        "reason": "the content is not PDF: it does not start with %PDF-: it looks like a "
        "Windows program (MZ)",
    }


@pytest.mark.parametrize(
    ("filename", "content_type", "content", "says"),
    [
        ("setup.exe", None, EXE, "a file ending .exe is not allowed"),
        ("setup.exe", PDF, sample(PDF), "a file ending .exe is not allowed"),
        ("README", TXT, b"text", "a file name without an extension is not allowed"),
        ("page.html", "text/html", b"<p>", "a file ending .html is not allowed"),
        ("esf.pdf", "application/x-msdownload", EXE, "declared type application/x-msdownload"),
        ("chart.png", PDF, sample(PDF), "the name ends .png (PNG) but the declared type is"),
        ("chart.png", PNG, sample(JPEG), "the content is not PNG: it does not start with"),
        ("photo.jpg", JPEG, sample(PNG), "it looks like a PNG image"),
        ("notes.txt", TXT, b"caf\xe9", "not valid UTF-8 text (byte 3)"),
        ("notes.csv", CSV, b"a,b\n\x00,c", "a NUL byte at 4"),
        ("report.docx", DOCX, sample(PDF), "the content is not DOCX: it is not a ZIP file"),
        ("report.docx", DOCX, sample(XLSX), "no main part of type"),
        ("figures.xlsx", XLSX, sample(DOCX), "no main part of type"),
        ("report.docx", DOCX, office("word/document.xml", MACRO_WORD_MAIN), "no main part"),
        (
            "report.docx",
            DOCX,
            office(*MAIN_PARTS[DOCX], with_part=False),
            "its main part word/document.xml is missing",
        ),
        ("report.docx", DOCX, b"PK\x03\x04 but no archive", "not a readable ZIP file"),
        ("empty.pdf", PDF, b"", "the file is empty"),
    ],
)
def test_a_file_whose_name_type_or_bytes_disagree_is_refused(
    filename: str, content_type: str | None, content: bytes, says: str
) -> None:
    refused = refusal(filename, content_type, content)
    assert refused.problem == "type"
    assert says in refused.reason
    assert (refused.field, refused.filename) == ("documents[0]", filename)


def test_a_zip_bomb_in_place_of_content_types_is_not_read_whole() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b" " * (MAX_CONTENT_TYPES_BYTES + 10))
    refused = refusal("report.docx", DOCX, buffer.getvalue(), limit=10**7)
    assert "larger than" in refused.reason


def test_the_size_limit_is_exact() -> None:
    at_limit = b"x" * LIMIT
    assert check_document("documents[0]", "notes.txt", TXT, at_limit, limit=LIMIT).size == LIMIT
    refused = refusal("notes.txt", TXT, at_limit + b"x")
    assert refused.problem == "size"
    assert refused.as_error()["file"] == "notes.txt"
    assert f"({LIMIT} bytes)" in refused.reason
    assert "RECTRACK_MAX_DOCUMENT_BYTES" in refused.reason


@pytest.mark.parametrize(
    ("alias", "filename", "expected"),
    [
        ("application/vnd.ms-excel", "actions.csv", CSV),  # Windows with Excel says so of CSV
        ("image/pjpeg", "photo.jpeg", JPEG),
        ("Application/PDF; name=x", "esf.PDF", PDF),
    ],
)
def test_other_names_clients_give_the_allowed_types(
    alias: str, filename: str, expected: MediaType
) -> None:
    assert declared_type("documents[0]", filename, alias) == expected


@pytest.mark.parametrize(
    ("filename", "recorded"),
    [
        ("C:\\Users\\me\\esf.pdf", "esf.pdf"),
        ("../../etc/esf.pdf", "esf.pdf"),
        ("  Évaluation 2024.pdf ", "Évaluation 2024.pdf"),
    ],
)
def test_only_the_last_segment_of_a_client_path_is_recorded(filename: str, recorded: str) -> None:
    assert document_name("documents[0]", filename) == recorded


@pytest.mark.parametrize(
    ("filename", "says"),
    [("dir/", "no name"), ("bad\x1bname.pdf", "U+001B"), ("a" * 497 + ".pdf", "longer than 500")],
)
def test_names_an_event_cannot_record_are_refused(filename: str, says: str) -> None:
    refused = refusal(filename, PDF, sample(PDF))
    assert refused.problem == "name"
    assert says in refused.reason


def test_the_kinds_labels_and_extensions_agree() -> None:
    assert set(LABELS) == set(EXTENSIONS) == set(MEDIA_TYPES)
    assert {LABELS[t] for t in MEDIA_TYPES} == {"PDF", "DOCX", "XLSX", "PNG", "JPEG", "TXT", "CSV"}
    assert label_of(PDF) == "PDF" and label_of("x/y") == "x/y" and label_of(None) is None
    assert [size_text(n) for n in (5, 2048, 3 * 1024 * 1024 + 1)] == ["5 B", "2.0 KB", "3.0 MB"]
