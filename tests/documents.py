"""Sample documents of every allowed kind, and hostile ones, for the evidence tests (no I/O)."""

import io
import zipfile

from events.documents import MediaType
from infra.documents.store import DocumentStore, sha256_of

PDF: MediaType = "application/pdf"
DOCX: MediaType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX: MediaType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG: MediaType = "image/png"
JPEG: MediaType = "image/jpeg"
TXT: MediaType = "text/plain"
CSV: MediaType = "text/csv"

_OOXML = "application/vnd.openxmlformats-officedocument"
MAIN_PARTS = {
    DOCX: ("word/document.xml", f"{_OOXML}.wordprocessingml.document.main+xml"),
    XLSX: ("xl/workbook.xml", f"{_OOXML}.spreadsheetml.sheet.main+xml"),
}
MACRO_WORD_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"


def office(main_part: str, main_type: str, *, with_part: bool = True) -> bytes:
    """A minimal OOXML package: [Content_Types].xml naming a main part of `main_type`."""
    types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override ContentType="{main_type}" PartName="/{main_part}"/>'
        "</Types>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        if with_part:
            archive.writestr(main_part, "<document>Evidence of improvement</document>")
    return buffer.getvalue()


def sample(media_type: MediaType, tag: str = "") -> bytes:
    """Valid bytes of a kind; `tag` makes them unique (each test stores documents of its own)."""
    if media_type == PDF:
        return b"%PDF-1.7\n% evidence " + tag.encode() + b"\n%%EOF\n"
    if media_type in MAIN_PARTS:
        part, main = MAIN_PARTS[media_type]
        return office(part, main) + tag.encode()  # bytes after the archive: still a ZIP
    if media_type == PNG:
        return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + tag.encode()
    if media_type == JPEG:
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + tag.encode()
    if media_type == CSV:
        return f"date,action\n2024-05-01,training delivered {tag}\n".encode()
    return f"Evidence of improvement: training delivered to 90% of officers. {tag}\n".encode()


NAMES = {
    PDF: "esf.pdf",
    DOCX: "report.docx",
    XLSX: "figures.xlsx",
    PNG: "chart.png",
    JPEG: "photo.jpg",
    TXT: "notes.txt",
    CSV: "actions.csv",
}

# A Windows program: what a .exe starts with.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"


async def exercise_store(store: DocumentStore, tag: str) -> None:
    """What every DocumentStore does: content-addressed, idempotent, unknown hashes absent."""
    content = sample(PDF, tag)
    key = sha256_of(content)
    assert not await store.has(key)
    assert await store.get(key) is None
    first = await store.put(content, PDF)
    assert (first.sha256, first.size, first.media_type) == (key, len(content), PDF)
    again = await store.put(content, TXT)  # the same bytes: kept once, first type stays
    assert again == first
    assert await store.has(key)
    stored = await store.get(key)
    assert stored is not None and stored.content == content and stored.info == first
    other = await store.put(sample(PNG, tag), PNG)
    assert other.sha256 != key and await store.has(other.sha256)
