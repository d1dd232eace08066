"""An in-memory document store: the fake for unit tests (same behaviour as PostgreSQL's)."""

from datetime import UTC, datetime

from infra.documents.store import DocumentInfo, StoredDocument, sha256_of


class MemoryDocumentStore:
    """A DocumentStore in a dict; `rows` may be edited by tests to alter or lose a document."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredDocument] = {}

    async def put(self, content: bytes, media_type: str) -> DocumentInfo:
        """Keep the bytes under their SHA-256; idempotent, and repairs altered bytes."""
        key = sha256_of(content)
        held = self.rows.get(key)
        if held is not None:
            if held.content != content:
                repaired = DocumentInfo(
                    key, held.info.media_type, len(content), held.info.created_at
                )
                self.rows[key] = StoredDocument(repaired, bytes(content))
                return repaired
            return held.info
        info = DocumentInfo(key, media_type, len(content), datetime.now(UTC))
        self.rows[key] = StoredDocument(info, bytes(content))
        return info

    async def get(self, sha256: str) -> StoredDocument | None:
        """The document under this hash, or None."""
        return self.rows.get(sha256)

    async def has(self, sha256: str) -> bool:
        """Whether a document is stored under this hash."""
        return sha256 in self.rows
