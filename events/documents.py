"""The kinds of document evidence may hold: media types, what people call them, file extensions.

The contract of commands names these seven (`SubmitEvidence` documents may say their media
type, and only one of these); what a document's bytes must look like to be each kind is checked
where the bytes are, at upload (`infra/documents/kinds.py`). Events keep whatever media type
they were written with, so this list may grow without making any event unreadable.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

MediaType = Literal[
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "image/png",
    "image/jpeg",
    "text/plain",
    "text/csv",
]
MEDIA_TYPES: tuple[MediaType, ...] = get_args(MediaType)

LABELS: Mapping[str, str] = MappingProxyType(
    {
        "application/pdf": "PDF",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "DOCX",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
        "image/png": "PNG",
        "image/jpeg": "JPEG",
        "text/plain": "TXT",
        "text/csv": "CSV",
    }
)
"""What people call each kind (the upload form's list, the handover pack's links)."""

EXTENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "application/pdf": (".pdf",),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
        "image/png": (".png",),
        "image/jpeg": (".jpg", ".jpeg"),
        "text/plain": (".txt",),
        "text/csv": (".csv",),
    }
)
"""The file name endings each kind may have (lower case); the first is the usual one."""

if set(LABELS) != set(MEDIA_TYPES) or set(EXTENSIONS) != set(MEDIA_TYPES):  # pragma: no cover
    raise RuntimeError("LABELS, EXTENSIONS and MediaType name different media types")


def label_of(media_type: str | None) -> str | None:
    """What people call a media type ("PDF"), the type itself if it is none of ours, or None."""
    if media_type is None:
        return None
    return LABELS.get(media_type, media_type)


def size_text(size: int) -> str:
    """A size for people: bytes below 1 KB, then KB and MB with one decimal (1 KB = 1,024 B)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
