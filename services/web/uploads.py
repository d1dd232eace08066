"""`multipart/form-data` read as it streams, every file and field bounded as its bytes arrive.

Nothing here holds a body in memory: each file goes to a temporary file (in memory up to 1 MiB,
then on disk) while its bytes are counted, and a file that passes the document limit
(RECTRACK_MAX_DOCUMENT_BYTES) stops being kept at that byte: the rest of it is read and
dropped, so the client still gets its answer (a server that stops reading mid-upload leaves
most clients with a broken connection instead of the error). The whole body is bounded too,
by `services/web/limits.py`, before and while it is read. Text fields are bounded and must be
UTF-8; a field given twice, too many fields or files, or a body that is not multipart are
refused naming the field.

For the evidence upload (services/web/evidence.py) and any HTML form that posts files:

    async with await read_multipart(request, max_file_bytes=..., max_files=...) as form:
        form.fields["evidence_id"], form.files[0].filename, await form.files[0].read()
"""

import asyncio
import tempfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from infra.documents.kinds import DocumentRefused, size_refusal

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 128 * 1024  # a summary of 20,000 characters is at most 80 KB of UTF-8
MAX_FIELDS = 32
SPOOL_IN_MEMORY = 1024 * 1024


class UploadRefused(Exception):
    """A multipart body refused as a whole: an HTTP status and the API's error items."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


def _refused(status: int, field_name: str, reason: str) -> UploadRefused:
    return UploadRefused(status, [{"field": field_name, "reason": reason}])


@dataclass
class ReceivedFile:
    """One file of the form, kept in a temporary file until the form is closed."""

    field: str
    index: int
    filename: str
    content_type: str | None
    size: int = 0
    spool: IO[bytes] | None = None

    @property
    def label(self) -> str:
        """The file's place in the form, as refusals name it: `documents[0]`."""
        return f"{self.field}[{self.index}]"

    async def read(self) -> bytes:
        """Its bytes (at most the limit it was read with: larger files are refused)."""
        spool = self.spool
        if spool is None:
            return b""

        def read_all() -> bytes:
            spool.seek(0)
            return spool.read()

        return await asyncio.to_thread(read_all)

    def close(self) -> None:
        """Drop its bytes."""
        if self.spool is not None:
            self.spool.close()
            self.spool = None


@dataclass
class ReceivedForm:
    """The form's text fields, its files, and the files refused while they streamed (too
    large). Close it (or use it as an async context manager) to drop the files' bytes."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)
    refused: list[DocumentRefused] = field(default_factory=list)

    def files_of(self, name: str) -> list[ReceivedFile]:
        """The files sent under one field name, in order."""
        return [f for f in self.files if f.field == name]

    def close(self) -> None:
        """Drop every file's bytes."""
        for f in self.files:
            f.close()

    async def __aenter__(self) -> "ReceivedForm":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type; UploadRefused (415) otherwise."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise _refused(415, "(body)", "the body must be multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary:
        raise _refused(422, "(body)", "multipart/form-data without a boundary")
    return boundary


class _Reader:
    """The parser's callbacks: builds the form, bounding every part as it arrives."""

    def __init__(
        self, *, max_file_bytes: int, max_files: int, max_field_bytes: int, max_fields: int
    ) -> None:
        self.form = ReceivedForm()
        self.max_file_bytes, self.max_files = max_file_bytes, max_files
        self.max_field_bytes, self.max_fields = max_field_bytes, max_fields
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.field_name = ""
        self.text: bytearray | None = None  # the current part, when it is a text field
        self.file: ReceivedFile | None = None  # the current part, when it is a file
        self.skipping = False  # an empty file input (no file chosen), or a refused file
        self.pending: list[tuple[IO[bytes], bytes]] = []  # file bytes to write off the loop
        self.field_count = 0
        self.ended = False  # the closing boundary was read

    def callbacks(self) -> "MultipartCallbacks":
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value_part,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self.headers, self.text, self.file, self.skipping = {}, None, None, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_part(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise _refused(422, "(body)", "a part has no Content-Disposition name")
        name = _text(options[b"name"], "(body)")
        self.field_name = name
        if b"filename" not in options:
            self.field_count += 1
            if self.field_count > self.max_fields:
                raise _refused(422, name, f"more than {self.max_fields} fields")
            if name in self.form.fields:
                raise _refused(422, name, "given twice")
            self.text = bytearray()
            return
        filename = _text(options[b"filename"], name)
        files = self.form.files_of(name)
        self.file = ReceivedFile(
            field=name,
            index=len(files),
            filename=filename,
            content_type=_text(self.headers[b"content-type"], name)
            if b"content-type" in self.headers
            else None,
        )
        if not filename:
            # An HTML file input left empty sends a part with an empty name and no bytes.
            self.skipping = True
            return
        if len(self.form.files) + len(self.form.refused) >= self.max_files:
            raise _refused(422, name, f"more than {self.max_files} files")
        self.file.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.form.files.append(self.file)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.text is not None:
            if len(self.text) + end - start > self.max_field_bytes:
                raise _refused(413, self.field_name, f"larger than {self.max_field_bytes} bytes")
            self.text += data[start:end]
            return
        file = self.file
        if file is None:
            return
        if self.skipping:
            if end > start and not file.filename:
                raise DocumentRefused(file.label, "", "the file has no name", "name")
            return
        file.size += end - start
        if file.size > self.max_file_bytes:
            # Kept no further: the rest of this file is read and dropped.
            self.form.refused.append(size_refusal(file.label, file.filename, self.max_file_bytes))
            file.close()
            self.form.files.remove(file)
            self.skipping = True
            return
        if file.spool is not None:
            self.pending.append((file.spool, data[start:end]))

    def part_end(self) -> None:
        if self.text is not None:
            self.form.fields[self.field_name] = _text(bytes(self.text), self.field_name)
            self.text = None
        self.file = None

    def end(self) -> None:
        self.ended = True


def _text(raw: bytes, field_name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refused(422, field_name, "not UTF-8 text") from None


def _write(pending: list[tuple[IO[bytes], bytes]]) -> None:
    for spool, chunk in pending:
        spool.write(chunk)


async def read_multipart(
    request: Request,
    *,
    max_file_bytes: int,
    max_files: int,
    max_field_bytes: int = MAX_FIELD_BYTES,
    max_fields: int = MAX_FIELDS,
) -> ReceivedForm:
    """Read a multipart/form-data body as it streams.

    Files larger than `max_file_bytes` come back in `refused` (DocumentRefused naming the field
    and the file), not in `files`; UploadRefused (status, error items naming the field) refuses
    the body as a whole. The caller closes the form (`async with`).
    """
    boundary = multipart_boundary(request.headers.get("content-type"))
    reader = _Reader(
        max_file_bytes=max_file_bytes,
        max_files=max_files,
        max_field_bytes=max_field_bytes,
        max_fields=max_fields,
    )
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if reader.pending:
                pending, reader.pending = reader.pending, []
                await asyncio.to_thread(_write, pending)
        parser.finalize()
        if not reader.ended:
            # A body cut short must not leave a truncated file to be stored as a document.
            raise _refused(422, "(body)", "the body ends before the closing multipart boundary")
    except DocumentRefused as exc:
        reader.form.close()
        raise UploadRefused(422, [exc.as_error()]) from None
    except ClientDisconnect:
        reader.form.close()
        raise _refused(400, "(body)", "the client went away before the body ended") from None
    except FormParserError as exc:
        reader.form.close()
        raise _refused(422, "(body)", f"not valid multipart/form-data: {exc}") from None
    except BaseException:
        reader.form.close()
        raise
    return reader.form
