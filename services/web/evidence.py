"""Evidence with its documents, from an upload: every file checked, then stored, then the
`SubmitEvidence` command submitted as the caller, naming each document's name, size, media type
and SHA-256.

Nothing is stored while anything is wrong: the files' sizes and kinds (infra/documents/kinds.py),
the evidence fields (the command's own validation) and the caller's role are all checked first,
so a refused upload leaves no document and no command behind. Documents are stored before the
command is sent, so an accepted event never names a document the store lacks. A command then
rejected by the decider (another team's recommendation, an evidence id already used) leaves its
documents stored but cited by no event, and no one can download those (404).

The Python API, for the API route and for HTML forms that post evidence:

- `read_evidence_form(request, settings)` -> `ReceivedForm`: the multipart body read as it
  streams, each file bounded by `settings.max_document_bytes` (RECTRACK_MAX_DOCUMENT_BYTES);
  close it with `async with`. A form may check its own fields (a CSRF token) in `form.fields`
  before going on; fields it owns are passed in `ignore`.
- `submit_evidence_form(request, form, actor, recommendation_id, *, wait, ignore)` ->
  `EvidenceResult`: check, store, submit, with the app's store and gateway.
- `check_uploaded(form, limit=)` -> `[UploadedDocument]`, `evidence_command(...)`,
  `submit_evidence(...)`: the steps, on any `DocumentStore` and anything with the gateway's
  `submit`. Only one document's bytes are in memory at a time: each is read from its
  temporary file to be checked and hashed, then again to be stored.
- Refusals are `EvidenceRefused` (HTTP status and error items, each naming the field and, for
  a file, the file) and `EvidenceForbidden` (the role can never submit evidence).
- `evidence_body_limit(max_document_bytes)`: the body limit of a route that takes the upload.
"""

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from fastapi import Request

from events.documents import MediaType
from events.envelope import Actor
from events.outcome import Outcome
from infra.documents.kinds import DocumentRefused, check_document
from infra.documents.store import DocumentStore, sha256_of
from infra.settings import Settings
from projections.recommendations.handover import DOCUMENT_PATH, HandoverPack
from services.domain.commands import Command, DocumentInput, InvalidCommand, parse_command
from services.domain.permissions import refusal
from services.web.access import bind_commands
from services.web.routes.commands import ACK_TIMEOUT_SECONDS
from services.web.uploads import ReceivedFile, ReceivedForm, read_multipart

MAX_EVIDENCE_DOCUMENTS = 10
DOCUMENTS_FIELD = "documents"
# The evidence's own fields (SubmitEvidence's data) and the command's, as form fields.
REQUIRED_FIELDS = ("evidence_id", "summary")
# Left out when empty, as an HTML form sends an optional field nobody filled in.
OPTIONAL_DATA_FIELDS = ("source",)
COMMAND_FIELDS = ("command_id", "correlation_id", "effective_date", "expected_version")
# Room for the text fields and the multipart framing around the files.
FORM_OVERHEAD_BYTES = 1024 * 1024


def evidence_body_limit(max_document_bytes: int) -> int:
    """The most bytes an evidence upload's body may hold: all its documents at their largest,
    and the fields (services/web/limits.py refuses more before and while reading)."""
    return MAX_EVIDENCE_DOCUMENTS * max_document_bytes + FORM_OVERHEAD_BYTES


class EvidenceRefused(Exception):
    """An upload refused before anything was stored: an HTTP status and error items, each
    naming the field and, for a file, the file (`{"field", "file", "reason"}`)."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class EvidenceForbidden(Exception):
    """The caller's role can never submit evidence; nothing was stored or sent."""

    def __init__(self, command: Command, detail: str) -> None:
        self.command = command
        self.detail = detail
        super().__init__(detail)


class CommandSubmitter(Protocol):
    """What sends a command and waits for its outcome (the CommandGateway)."""

    async def submit(
        self, commands: Sequence[Command], *, timeout: float = ..., ack_timeout: float | None = ...
    ) -> Mapping[UUID, Outcome]:
        """Send the commands; their outcomes that arrived within `timeout` seconds."""
        ...


@dataclass(frozen=True)
class UploadedDocument:
    """A file of the form that passed every check: what the event will say of it, and where
    its bytes wait (the form's temporary file, until the form is closed)."""

    name: str
    media_type: MediaType
    size: int
    sha256: str
    file: ReceivedFile

    async def read(self) -> bytes:
        """Its bytes."""
        return await self.file.read()

    def cited(self) -> DocumentInput:
        """The document as the command names it."""
        return DocumentInput(
            name=self.name, sha256=self.sha256, size=self.size, media_type=self.media_type
        )


@dataclass(frozen=True)
class EvidenceResult:
    """The command sent, the documents it names (all stored), and its outcome: None when none
    arrived in time (the command was sent; poll GET /commands/{command_id})."""

    command: Command
    documents: tuple[DocumentInput, ...]
    outcome: Outcome | None

    def documents_json(self) -> list[dict[str, Any]]:
        """Each document as the API answers it, with the path that downloads it."""
        return [
            {**d.model_dump(mode="json"), "href": DOCUMENT_PATH.format(sha256=d.sha256)}
            for d in self.documents
        ]


def _status_of(refusals: Sequence[DocumentRefused]) -> int:
    problems = {r.problem for r in refusals}
    return 413 if "size" in problems else 415 if "type" in problems else 422


async def check_uploaded(
    form: ReceivedForm, *, limit: int, at_least: int = 1
) -> list[UploadedDocument]:
    """Every file of the form checked (name, size, declared type, content) and hashed, in order.

    EvidenceRefused names every file refused, not just the first: 413 when one is too large,
    else 415 when one is of a type not allowed or not what it says, else 422 (also for fewer
    than `at_least` files: evidence without documents goes through POST /commands).
    """
    stray = sorted({f.field for f in form.files} - {DOCUMENTS_FIELD})
    if stray:
        reason = f"files go in the field {DOCUMENTS_FIELD!r}"
        raise EvidenceRefused(422, [{"field": name, "reason": reason} for name in stray])
    if len(form.files) + len(form.refused) < at_least:
        reason = f"at least {at_least} file(s) are needed"
        raise EvidenceRefused(422, [{"field": DOCUMENTS_FIELD, "reason": reason}])
    refused = list(form.refused)
    checked: list[UploadedDocument] = []
    for file in form.files_of(DOCUMENTS_FIELD):
        content = await file.read()
        try:
            ok = check_document(file.label, file.filename, file.content_type, content, limit=limit)
        except DocumentRefused as exc:
            refused.append(exc)
            continue
        digest = await asyncio.to_thread(sha256_of, content)
        checked.append(UploadedDocument(ok.name, ok.media_type, ok.size, digest, file))
    if refused:
        raise EvidenceRefused(_status_of(refused), [r.as_error() for r in refused])
    return checked


def evidence_command(
    actor: Actor,
    recommendation_id: str,
    fields: Mapping[str, str],
    documents: Sequence[DocumentInput],
) -> Command:
    """The SubmitEvidence command of a form's fields, as `actor` (the token's or session's).

    Fields: `evidence_id`, `summary` and optionally `source` (the evidence), `command_id`,
    `correlation_id`, `effective_date` and `expected_version` (the command, as in
    POST /commands); optional ones left empty count as not given. EvidenceRefused (422) names
    any other field and every invalid one.
    """
    unknown = sorted(set(fields) - {*REQUIRED_FIELDS, *OPTIONAL_DATA_FIELDS, *COMMAND_FIELDS})
    if unknown:
        reason = "not a field of evidence"
        raise EvidenceRefused(422, [{"field": f, "reason": reason} for f in unknown])
    data: dict[str, Any] = {
        "recommendation_id": recommendation_id,
        **{f: fields[f] for f in REQUIRED_FIELDS if f in fields},
        **{f: fields[f] for f in OPTIONAL_DATA_FIELDS if fields.get(f)},
        "documents": [d.model_dump(mode="json") for d in documents],
    }
    doc: dict[str, Any] = {"type": "SubmitEvidence", "data": data, "actor": actor}
    doc.update({f: fields[f] for f in COMMAND_FIELDS if fields.get(f)})
    if "expected_version" in doc:
        try:
            doc["expected_version"] = int(doc["expected_version"])
        except ValueError:
            reason = "must be a whole number"
            raise EvidenceRefused(422, [{"field": "expected_version", "reason": reason}]) from None
    try:
        return parse_command(doc)
    except InvalidCommand as exc:
        # Name form fields as the form has them: data.summary is the field summary.
        errors = [{**e, "field": e["field"].removeprefix("data.")} for e in exc.errors]
        raise EvidenceRefused(422, errors) from exc


async def submit_evidence(
    *,
    store: DocumentStore,
    gateway: CommandSubmitter,
    actor: Actor,
    recommendation_id: str,
    fields: Mapping[str, str],
    documents: Sequence[UploadedDocument],
    wait: float,
) -> EvidenceResult:
    """Store checked documents and submit the evidence naming them, as `actor`.

    The command is built and the role checked before anything is stored (EvidenceRefused,
    EvidenceForbidden). Call it while the form is open (its files hold the bytes). `wait`:
    seconds to wait for the decider's outcome.
    """
    if len(documents) > MAX_EVIDENCE_DOCUMENTS:
        reason = f"at most {MAX_EVIDENCE_DOCUMENTS} documents per evidence"
        raise EvidenceRefused(422, [{"field": DOCUMENTS_FIELD, "reason": reason}])
    cited = tuple(d.cited() for d in documents)
    command = evidence_command(actor, recommendation_id, fields, cited)
    denied = refusal(actor.role, command.type)
    if denied is not None:
        raise EvidenceForbidden(command, denied)
    for document in documents:
        stored = await store.put(await document.read(), document.media_type)
        if stored.sha256 != document.sha256:
            # A file changed under us, or a store that is not content-addressed: never send
            # an event naming bytes the store does not hold.
            raise RuntimeError(f"the document store filed {document.sha256} as {stored.sha256}")
    bind_commands([command])
    outcomes = await gateway.submit([command], timeout=wait, ack_timeout=ACK_TIMEOUT_SECONDS)
    return EvidenceResult(command, cited, outcomes.get(command.command_id))


async def stored_documents(request: Request, pack: HandoverPack) -> set[str]:
    """The documents of a handover pack's evidence that the store holds (they get links)."""
    store = document_store(request)
    cited = {d.sha256 for e in pack.evidence for d in e.documents}
    return {sha256 for sha256 in cited if await store.has(sha256)}


def document_store(request: Request) -> DocumentStore:
    """The app's document store (opened in its lifespan)."""
    store: DocumentStore = request.app.state.documents
    return store


async def read_evidence_form(request: Request, settings: Settings) -> ReceivedForm:
    """The evidence form of a request, read as it streams (close it: `async with`)."""
    return await read_multipart(
        request, max_file_bytes=settings.max_document_bytes, max_files=MAX_EVIDENCE_DOCUMENTS
    )


async def submit_evidence_form(
    request: Request,
    form: ReceivedForm,
    actor: Actor,
    recommendation_id: str,
    *,
    wait: float,
    ignore: Collection[str] = (),
) -> EvidenceResult:
    """Check, store and submit a read evidence form with the app's store and gateway.

    `ignore`: form fields that are the form's own business (a CSRF token), not evidence.
    """
    settings: Settings = request.app.state.settings
    documents = await check_uploaded(form, limit=settings.max_document_bytes)
    fields = {k: v for k, v in form.fields.items() if k not in ignore}
    return await submit_evidence(
        store=document_store(request),
        gateway=request.app.state.gateway,
        actor=actor,
        recommendation_id=recommendation_id,
        fields=fields,
        documents=documents,
        wait=wait,
    )
