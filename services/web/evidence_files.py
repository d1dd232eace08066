"""Evidence files uploaded from the browser: checked by their content, kept by their SHA-256.

A stand-in, kept apart on purpose: the documents store (content-addressed, with its own upload
API and downloads) is being built beside this, and once it is merged the evidence form will
hand its files to it instead. Until then this module is the whole of it, behind two calls:

- `check_files(uploads, max_bytes)`: every file's name, size, media type and SHA-256, or
  `FilesRefused` naming each file at fault and why (nothing is kept);
- `store_files(folder, checked)`: the checked files written under `folder/ab/abcdef…` (the
  SHA-256), once each; returns the same (name, size, media type, sha256) per file.

`store_evidence_files` does both. Allowed are PDF, DOCX, XLSX, PNG, JPEG, plain text and CSV,
judged by what the bytes are (a renamed program is refused), and the file's extension must
agree; each file is at most `max_bytes` (RECTRACK_EVIDENCE_MAX_MB, 25 MB by default).
"""

import codecs
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
MAX_FILES = 10
ALLOWED_WORDS = "PDF, Word (DOCX), Excel (XLSX), PNG, JPEG, plain text or CSV"


class Upload(Protocol):
    """What the route hands in: Starlette's UploadFile has these."""

    @property
    def filename(self) -> str | None:
        """The name the browser sent."""

    @property
    def file(self) -> BinaryIO:
        """The content (a temporary file)."""


@dataclass(frozen=True)
class StoredDocument:
    """One evidence file: what the command names (name, sha256) and what a download needs."""

    name: str
    size: int
    media_type: str
    sha256: str


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks, still in the upload's own temporary file."""

    document: StoredDocument
    source: BinaryIO


class FilesRefused(ValueError):
    """Files that cannot be evidence: one sentence per file at fault."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


# media type -> the extensions a file of that type may have
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "text/plain": (".txt",),
    "text/csv": (".csv",),
}


def megabytes(n: int) -> str:
    """A size limit in words."""
    return f"{n // (1024 * 1024)} MB"


def _plain_name(filename: str) -> str:
    """The file's own name, without any folder a browser or a forger put before it."""
    return PureWindowsPath(PurePosixPath(filename).name).name.strip()


def _sniff(head: bytes, source: BinaryIO, extension: str) -> str | None:
    """The media type the bytes are, if one of those allowed."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        return _office(source)
    if _is_text(source):
        return "text/csv" if extension == ".csv" else "text/plain"
    return None


def _office(source: BinaryIO) -> str | None:
    """DOCX or XLSX: an Office Open XML package (a zip with its content types and main part)."""
    source.seek(0)
    try:
        with zipfile.ZipFile(source) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    if "xl/workbook.xml" in names:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return None


def _is_text(source: BinaryIO) -> bool:
    """UTF-8 text with no NUL and no control character but tab, newline and carriage return."""
    source.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    allowed = {"\t", "\n", "\r"}
    try:
        while chunk := source.read(CHUNK):
            text = decoder.decode(chunk)
            if any((c < " " and c not in allowed) or c == "\x7f" for c in text):
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _check(upload: Upload, max_bytes: int) -> StoredDocument | str:
    """The file's document, or why it cannot be evidence."""
    name = _plain_name(upload.filename or "")
    shown = name or "A file without a name"
    source = upload.file
    source.seek(0)
    digest, size = hashlib.sha256(), 0
    head = b""
    while chunk := source.read(CHUNK):
        if not head:
            head = chunk[:16]
        size += len(chunk)
        if size > max_bytes:
            return f"{shown} is larger than {megabytes(max_bytes)}: choose a smaller file"
        digest.update(chunk)
    if size == 0:
        return f"{shown} is empty"
    if not name:
        return "A file has no name"
    extension = os.path.splitext(name)[1].lower()
    media_type = _sniff(head, source, extension)
    if media_type is None or extension not in EXTENSIONS[media_type]:
        return f"{shown} must be a {ALLOWED_WORDS} file"
    return StoredDocument(name=name, size=size, media_type=media_type, sha256=digest.hexdigest())


def check_files(uploads: Sequence[Upload], max_bytes: int) -> list[CheckedFile]:
    """Every file's (name, size, media type, sha256), or FilesRefused naming each bad one."""
    if len(uploads) > MAX_FILES:
        raise FilesRefused([f"Choose at most {MAX_FILES} files at once"])
    checked, reasons = [], []
    for upload in uploads:
        result = _check(upload, max_bytes)
        if isinstance(result, str):
            reasons.append(result)
        else:
            checked.append(CheckedFile(result, upload.file))
    if reasons:
        raise FilesRefused(reasons)
    return checked


def path_of(folder: Path, sha256: str) -> Path:
    """Where the file with this SHA-256 is kept."""
    return folder / sha256[:2] / sha256


def has_file(folder: Path, sha256: str) -> bool:
    """Whether the store holds the file with this SHA-256."""
    return len(sha256) == 64 and path_of(folder, sha256).is_file()


def store_files(folder: Path, checked: Sequence[CheckedFile]) -> list[StoredDocument]:
    """Keep checked files by their SHA-256 (a file already kept is not written again); each is
    written to a temporary name and renamed, so a reader never sees half a file."""
    stored = []
    for item in checked:
        target = path_of(folder, item.document.sha256)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            item.source.seek(0)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
                shutil.copyfileobj(item.source, out, CHUNK)
            os.replace(out.name, target)
        stored.append(item.document)
    return stored


def store_evidence_files(
    folder: Path, uploads: Sequence[Upload], max_bytes: int
) -> list[StoredDocument]:
    """Check the uploads and keep them: (name, size, media type, sha256) per file."""
    return store_files(folder, check_files(uploads, max_bytes))


def media_type_of(path: Path, name: str) -> str:
    """The media type a kept file is served with (judged from its bytes again)."""
    with path.open("rb") as source:
        head = source.read(16)
        found = _sniff(head, source, os.path.splitext(name)[1].lower())
    return found or "application/octet-stream"
