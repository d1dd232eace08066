"""Which documents an upload may hold, judged by what they say they are AND by their bytes; pure.

A file is taken when its name's extension, its declared media type (the multipart part's
Content-Type; a browser's generic `application/octet-stream` or none defers to the extension)
and its content all agree on one of the allowed kinds (`events/documents.py`):

| kind | extensions | the bytes must |
|---|---|---|
| PDF | .pdf | start with `%PDF-` |
| DOCX | .docx | be a ZIP (`PK\\x03\\x04`) whose `[Content_Types].xml` names a main part of type
  `…wordprocessingml.document.main+xml`, and hold that part |
| XLSX | .xlsx | the same, with `…spreadsheetml.sheet.main+xml` |
| PNG | .png | start with the PNG signature `\\x89PNG\\r\\n\\x1a\\n` |
| JPEG | .jpg, .jpeg | start with a JPEG start of image, `\\xff\\xd8\\xff` |
| TXT, CSV | .txt, .csv | be valid UTF-8 with no NUL |

So a program renamed `report.pdf` is refused (its bytes start `MZ`, not `%PDF-`), and so is a
macro-enabled Word file renamed `.docx` (its main part is of another type). Every refusal names
the form field and the file, and says what was expected and what was found.
"""

import io
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from events.documents import EXTENSIONS, LABELS, MEDIA_TYPES, MediaType
from events.types import SHORT_TEXT_MAX, SINGLE_LINE_REFUSED

Problem = Literal["type", "size", "name"]
"""What is wrong: a type not allowed or bytes not of the type (HTTP 415), a size beyond the
limit (413), or a file name rectrack cannot record (422)."""

# Other names clients give the allowed types: Windows with Excel installed calls a CSV file
# application/vnd.ms-excel, older browsers say image/pjpeg, some PDF tools application/x-pdf.
ALIASES: Mapping[str, MediaType] = MappingProxyType(
    {
        "application/x-pdf": "application/pdf",
        "image/pjpeg": "image/jpeg",
        "image/jpg": "image/jpeg",
        "text/x-csv": "text/csv",
        "application/csv": "text/csv",
        "application/vnd.ms-excel": "text/csv",
    }
)
# Declared types that say nothing: the extension decides.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

ZIP_SIGNATURE = b"PK\x03\x04"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
PDF_SIGNATURE = b"%PDF-"
CONTENT_TYPES_PART = "[Content_Types].xml"
# [Content_Types].xml is a few KB; reading more of a hostile ZIP would be a decompression bomb.
MAX_CONTENT_TYPES_BYTES = 1024 * 1024
MAIN_PART_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
        ),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
        ),
    }
)


class DocumentRefused(ValueError):
    """An uploaded file rectrack does not take, naming the form field and the file."""

    def __init__(self, field: str, filename: str, reason: str, problem: Problem) -> None:
        self.field = field
        self.filename = filename
        self.reason = reason
        self.problem = problem
        super().__init__(f"{field} ({filename}): {reason}")

    def as_error(self) -> dict[str, str]:
        """The refusal as the API's error items are shaped, plus the file's name."""
        return {"field": self.field, "file": self.filename, "reason": self.reason}


def allowed_kinds() -> str:
    """The allowed kinds for people: "PDF (.pdf), DOCX (.docx), …"."""
    return ", ".join(f"{LABELS[t]} ({', '.join(EXTENSIONS[t])})" for t in MEDIA_TYPES)


def document_name(field: str, filename: str) -> str:
    """The name a file is recorded under: its last path segment, if rectrack can record it.

    Some browsers send the whole client path; only its last part is the file's name. The name
    must be one line of at most 500 characters, like every other name an event records.
    """
    name = re.split(r"[\\/]", filename)[-1].strip()
    if not name:
        raise DocumentRefused(field, filename, "the file has no name", "name")
    found = SINGLE_LINE_REFUSED.search(name)
    if found is not None:
        reason = f"the file name holds control character U+{ord(found.group()):04X}"
        raise DocumentRefused(field, filename, reason, "name")
    if len(name) > SHORT_TEXT_MAX:
        reason = f"the file name is longer than {SHORT_TEXT_MAX} characters"
        raise DocumentRefused(field, filename, reason, "name")
    return name


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def declared_type(field: str, filename: str, content_type: str | None) -> MediaType:
    """The allowed kind a file says it is, by its name's extension and its declared type.

    Both must name the same allowed kind; a generic declared type (or none) defers to the
    extension.
    """
    ext = _extension(filename)
    by_extension = next((t for t in MEDIA_TYPES if ext in EXTENSIONS[t]), None)
    if by_extension is None:
        found = f"a file ending {ext}" if ext else "a file name without an extension"
        raise DocumentRefused(
            field, filename, f"{found} is not allowed; allowed: {allowed_kinds()}", "type"
        )
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in GENERIC_TYPES:
        return by_extension
    named = ALIASES.get(declared) or next((t for t in MEDIA_TYPES if t == declared), None)
    if named is None:
        reason = f"declared type {declared} is not allowed; allowed: {allowed_kinds()}"
        raise DocumentRefused(field, filename, reason, "type")
    if named != by_extension:
        reason = (
            f"the name ends {ext} ({LABELS[by_extension]}) but the declared type is "
            f"{declared} ({LABELS[named]})"
        )
        raise DocumentRefused(field, filename, reason, "type")
    return named


def looks_like(content: bytes) -> str:
    """What some bytes look like, for a refusal's reason."""
    for signature, what in (
        (b"MZ", "a Windows program (MZ)"),
        (b"\x7fELF", "a Linux program (ELF)"),
        (b"#!", "a script (#!)"),
        (PDF_SIGNATURE, "a PDF"),
        (PNG_SIGNATURE, "a PNG image"),
        (JPEG_SOI, "a JPEG image"),
        (ZIP_SIGNATURE, "a ZIP archive"),
        (b"GIF8", "a GIF image"),
        (b"\xd0\xcf\x11\xe0", "an old Office file (OLE2)"),
    ):
        if content.startswith(signature):
            return what
    return f"bytes starting {content[:8].hex(' ')}"


def _starts(signature: bytes, shown: str) -> Callable[[bytes], str | None]:
    def check(content: bytes) -> str | None:
        if content.startswith(signature):
            return None
        return f"it does not start with {shown}: it looks like {looks_like(content)}"

    return check


def _text(content: bytes) -> str | None:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it is not valid UTF-8 text (byte {exc.start}): it looks like {looks_like(content)}"
    nul = content.find(b"\x00")
    if nul >= 0:
        return f"it holds a NUL byte at {nul}: text files hold none"
    return None


_ATTRIBUTE = re.compile(r"""([A-Za-z]+)\s*=\s*(["'])(.*?)\2""", re.DOTALL)
_OVERRIDE = re.compile(r"<Override\b[^>]*>")


def _office(media_type: str) -> Callable[[bytes], str | None]:
    main = MAIN_PART_TYPES[media_type]

    def check(content: bytes) -> str | None:
        if not content.startswith(ZIP_SIGNATURE):
            return f"it is not a ZIP file: it looks like {looks_like(content)}"
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
                if CONTENT_TYPES_PART not in names:
                    return f"it is a ZIP file without {CONTENT_TYPES_PART}: not an Office document"
                with archive.open(CONTENT_TYPES_PART) as part:
                    types = part.read(MAX_CONTENT_TYPES_BYTES + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
            return f"it is not a readable ZIP file ({exc})"
        if len(types) > MAX_CONTENT_TYPES_BYTES:
            return f"its {CONTENT_TYPES_PART} is larger than {MAX_CONTENT_TYPES_BYTES} bytes"
        text = types.decode("utf-8", errors="replace")
        for tag in _OVERRIDE.findall(text):
            attributes = {m.group(1): m.group(3) for m in _ATTRIBUTE.finditer(tag)}
            if attributes.get("ContentType") == main:
                part_name = attributes.get("PartName", "").lstrip("/")
                if part_name in names:
                    return None
                return f"its main part {part_name or '(unnamed)'} is missing"
        return f"it has no main part of type {main}"

    return check


CONTENT_CHECKS: Mapping[str, Callable[[bytes], str | None]] = MappingProxyType(
    {
        "application/pdf": _starts(PDF_SIGNATURE, "%PDF-"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _office(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        ),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _office(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ),
        "image/png": _starts(PNG_SIGNATURE, "the PNG signature"),
        "image/jpeg": _starts(JPEG_SOI, "a JPEG start of image (FF D8 FF)"),
        "text/plain": _text,
        "text/csv": _text,
    }
)
"""Why bytes are not of a media type, or None when they are."""


def check_content(field: str, filename: str, media_type: MediaType, content: bytes) -> None:
    """Refuse bytes that are not of the media type the file says it is (or that are empty)."""
    label = LABELS[media_type]
    if not content:
        raise DocumentRefused(field, filename, "the file is empty", "type")
    reason = CONTENT_CHECKS[media_type](content)
    if reason is not None:
        raise DocumentRefused(field, filename, f"the content is not {label}: {reason}", "type")


def _megabytes(n: int) -> str:
    """A limit as people read it: 25 MB for 26,214,400 bytes (MB of 2**20 bytes)."""
    return f"{n / 2**20:.3g} MB"


def size_refusal(field: str, filename: str, limit: int) -> DocumentRefused:
    """The refusal of a file larger than the limit (RECTRACK_MAX_DOCUMENT_BYTES)."""
    reason = (
        f"the file is larger than {_megabytes(limit)} ({limit} bytes), the most a document may "
        "hold (RECTRACK_MAX_DOCUMENT_BYTES)"
    )
    return DocumentRefused(field, filename, reason, "size")


@dataclass(frozen=True)
class CheckedDocument:
    """A file that passed every check: the name to record, its media type and its bytes."""

    name: str
    media_type: MediaType
    content: bytes

    @property
    def size(self) -> int:
        """Its size in bytes."""
        return len(self.content)


def check_document(
    field: str, filename: str, content_type: str | None, content: bytes, *, limit: int
) -> CheckedDocument:
    """A file checked for its name, its size (at most `limit` bytes), its declared type and
    its content; DocumentRefused names the field and the file otherwise."""
    name = document_name(field, filename)
    if len(content) > limit:
        raise size_refusal(field, filename, limit)
    media_type = declared_type(field, name, content_type)
    check_content(field, filename, media_type, content)
    return CheckedDocument(name, media_type, content)
