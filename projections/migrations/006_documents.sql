-- Evidence documents (issue 16), content-addressed: the key is the SHA-256 of the bytes, so the
-- same document uploaded twice is one row, and anyone holding an event's hash can check what
-- they are served. Not built from the log: `rectrack replay` moves this table into the rebuilt
-- schema as it switches over. media_type is the one the bytes were first stored with.
CREATE TABLE documents (
    sha256     text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type text        NOT NULL,
    size       bigint      NOT NULL CHECK (size > 0),
    content    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- PDFs, Office files and images are compressed already: store the bytes as they are, which
-- also lets PostgreSQL read a slice of a large one without reading it all.
ALTER TABLE documents ALTER COLUMN content SET STORAGE EXTERNAL;

-- Which evidence events cite a document (downloads are authorised by those events): a GIN
-- index on each EvidenceSubmitted event's documents, searched with @> '[{"sha256": …}]'.
CREATE INDEX event_log_documents ON event_log USING gin ((data -> 'documents') jsonb_path_ops)
    WHERE type = 'EvidenceSubmitted';
