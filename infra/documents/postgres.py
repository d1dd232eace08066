"""The document store in PostgreSQL (the default): table `documents` of the read-model schema.

One backup of the database covers the documents with everything else. Rows are never built from
the log, so `rectrack replay` moves the table into the rebuilt schema as it switches over
(projections/replay.py), as it copies the API tokens. The bytes are stored uncompressed
(`STORAGE EXTERNAL`: PDFs, Office files and images are compressed already), which also lets
PostgreSQL read a slice of a large one without reading it all.
"""

import asyncio

import asyncpg
import structlog

from infra.documents.store import DocumentInfo, StoredDocument, sha256_of

log = structlog.get_logger(__name__)

# A row under the same hash whose bytes differ was altered behind rectrack's back: the bytes
# just hashed are the genuine ones, so they go back in (the first media type and time stay).
_PUT = """
INSERT INTO documents (sha256, media_type, size, content) VALUES ($1, $2, $3, $4)
ON CONFLICT (sha256) DO UPDATE SET content = EXCLUDED.content, size = EXCLUDED.size
    WHERE documents.size <> EXCLUDED.size OR documents.content <> EXCLUDED.content
RETURNING media_type, size, created_at, (xmax = 0) AS inserted
"""


class PostgresDocumentStore:
    """A DocumentStore on an asyncpg pool whose search path is the read-model schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put(self, content: bytes, media_type: str) -> DocumentInfo:
        """Keep the bytes under their SHA-256; idempotent, and repairs altered bytes."""
        # 25 MB take tens of milliseconds to hash; hashlib lets go of the GIL meanwhile.
        key = await asyncio.to_thread(sha256_of, content)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_PUT, key, media_type, len(content), content)
            if row is None:  # held already, intact
                row = await conn.fetchrow(
                    "SELECT media_type, size, created_at FROM documents WHERE sha256 = $1", key
                )
                if row is None:  # deleted behind rectrack's back between the two statements
                    raise RuntimeError(f"document {key} vanished while it was being stored")
            elif not row["inserted"]:
                log.warning("document_repaired", sha256=key, size=len(content))
        return DocumentInfo(key, row["media_type"], row["size"], row["created_at"])

    async def get(self, sha256: str) -> StoredDocument | None:
        """The document under this hash with its bytes as stored, or None."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT media_type, size, created_at, content FROM documents WHERE sha256 = $1",
                sha256,
            )
        if row is None:
            return None
        info = DocumentInfo(sha256, row["media_type"], row["size"], row["created_at"])
        return StoredDocument(info, bytes(row["content"]))

    async def has(self, sha256: str) -> bool:
        """Whether a document is stored under this hash."""
        async with self.pool.acquire() as conn:
            found: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE sha256 = $1)", sha256
            )
        return found
