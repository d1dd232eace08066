"""The document store: evidence documents kept by the SHA-256 of their bytes.

A Protocol, so the PostgreSQL store (`infra/documents/postgres.py`, the default: one backup
covers the read models, the tokens and the documents) can be swapped for an object store
without touching its callers; `infra/documents/memory.py` is the fake for unit tests.

Content-addressed: the store computes the key from the bytes, so a caller cannot file a
document under the wrong hash, the same bytes uploaded twice are kept once, and whoever holds
an event's hash can check the bytes they are served.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


def sha256_of(content: bytes) -> str:
    """The key of these bytes: their SHA-256 as 64 lower-case hex digits."""
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class DocumentInfo:
    """What the store knows about a document besides its bytes.

    `media_type` is the one the document was first stored with: the same bytes may be cited
    by one event as TXT and by another as CSV, and each event keeps its own.
    """

    sha256: str
    media_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class StoredDocument:
    """A document and its bytes, as read back from the store."""

    info: DocumentInfo
    content: bytes


class DocumentStore(Protocol):
    """Where evidence documents live, keyed by the SHA-256 of their bytes."""

    async def put(self, content: bytes, media_type: str) -> DocumentInfo:
        """Keep these bytes under their SHA-256 and say what is stored.

        Idempotent: bytes already held are not stored twice (their first media type and
        created_at stay). A row under that hash whose bytes no longer match it (altered behind
        rectrack's back) gets these bytes again, so uploading the original repairs it.
        """
        ...

    async def get(self, sha256: str) -> StoredDocument | None:
        """The document stored under this hash, bytes as stored (not checked here), or None."""
        ...

    async def has(self, sha256: str) -> bool:
        """Whether anything is stored under this hash."""
        ...
