"""The in-memory document store behaves as every DocumentStore must (the PostgreSQL one passes
the same exercise in tests/integration/test_document_store.py)."""

from infra.documents.memory import MemoryDocumentStore
from infra.documents.store import DocumentStore, StoredDocument, sha256_of
from tests.documents import PDF, exercise_store, sample


async def test_the_memory_store_is_content_addressed_and_idempotent() -> None:
    store: DocumentStore = MemoryDocumentStore()  # it satisfies the Protocol (mypy checks)
    await exercise_store(store, "memory")


async def test_uploading_the_original_again_repairs_an_altered_document() -> None:
    store = MemoryDocumentStore()
    content = sample(PDF, "repair")
    info = await store.put(content, PDF)
    store.rows[info.sha256] = StoredDocument(info, b"%PDF-forged")
    repaired = await store.put(content, PDF)
    stored = await store.get(info.sha256)
    assert stored is not None and stored.content == content
    assert repaired.size == len(content) and sha256_of(stored.content) == info.sha256
