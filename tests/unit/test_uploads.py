"""Multipart bodies read as they stream: every file bounded at the document limit as its bytes
arrive, fields bounded and named, bodies that are not whole multipart refused."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.web.uploads import UploadRefused, read_multipart

LIMIT = 1000
FILES = 3
ONE = [("documents", ("a.txt", b"x", "text/plain"))]  # httpx sends multipart only with a file


async def upload(request: Request) -> JSONResponse:
    try:
        async with await read_multipart(
            request, max_file_bytes=LIMIT, max_files=FILES, max_field_bytes=100, max_fields=4
        ) as form:
            files = [
                {
                    "label": f.label,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": f.size,
                    "content": (await f.read()).decode("latin-1"),
                }
                for f in form.files
            ]
            refused = [r.as_error() for r in form.refused]
            return JSONResponse({"fields": form.fields, "files": files, "refused": refused})
    except UploadRefused as exc:
        return JSONResponse({"detail": exc.errors}, status_code=exc.status)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_fields_and_files_come_back_in_order(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/upload",
        data={"evidence_id": "esf-1", "summary": "Café\nstaff trained"},
        files=[
            ("documents", ("a.txt", b"first", "text/plain")),
            ("documents", ("b.pdf", b"%PDF-1.7", "application/pdf")),
        ],
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["fields"] == {"evidence_id": "esf-1", "summary": "Café\nstaff trained"}
    assert [(f["label"], f["filename"], f["content"]) for f in body["files"]] == [
        ("documents[0]", "a.txt", "first"),
        ("documents[1]", "b.pdf", "%PDF-1.7"),
    ]
    assert body["files"][1]["content_type"] == "application/pdf"
    assert body["refused"] == []


async def test_a_file_over_the_limit_is_kept_no_further_and_named(
    client: httpx.AsyncClient,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        # Streamed in small chunks, as a large upload arrives.
        payload = (
            b"--b\r\n"
            b'Content-Disposition: form-data; name="documents"; filename="big.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n"
        )
        yield payload
        for _ in range(50):
            yield b"%" * 100  # 5,000 bytes in all: five times the limit
        yield (
            b"\r\n--b\r\n"
            b'Content-Disposition: form-data; name="documents"; filename="ok.txt"\r\n\r\n'
            b"fine\r\n--b--\r\n"
        )

    response = await client.post(
        "/upload", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    result = response.json()
    assert response.status_code == 200, result
    assert [f["filename"] for f in result["files"]] == ["ok.txt"]
    assert result["refused"] == [
        {
            "field": "documents[0]",
            "file": "big.pdf",
            "reason": f"the file is larger than {LIMIT / 2**20:.3g} MB ({LIMIT} bytes), the most "
            "a document may hold (RECTRACK_MAX_DOCUMENT_BYTES)",
        }
    ]


async def test_a_file_of_exactly_the_limit_is_taken(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/upload", files=[("documents", ("full.txt", b"x" * LIMIT, "text/plain"))]
    )
    assert response.json()["files"][0]["size"] == LIMIT
    assert response.json()["refused"] == []


async def test_an_empty_file_input_sends_no_file(client: httpx.AsyncClient) -> None:
    # A browser posts an unused <input type=file> as a part with an empty file name.
    raw = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="documents"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\r\n--b\r\n"
        b'Content-Disposition: form-data; name="evidence_id"\r\n\r\n'
        b"esf-1\r\n--b--\r\n"
    )
    response = await client.post(
        "/upload", content=raw, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.json() == {"fields": {"evidence_id": "esf-1"}, "files": [], "refused": []}


@pytest.mark.parametrize(
    ("kwargs", "status", "field", "says"),
    [
        ({"data": {"summary": "s" * 101}, "files": ONE}, 413, "summary", "larger than 100 bytes"),
        ({"data": {f"f{n}": "x" for n in range(5)}, "files": ONE}, 422, "f4", "more than 4 fields"),
        (
            {"files": [("documents", (f"{n}.txt", b"x", "text/plain")) for n in range(4)]},
            422,
            "documents",
            f"more than {FILES} files",
        ),
        ({"content": b'{"json": true}'}, 415, "(body)", "must be multipart/form-data"),
    ],
)
async def test_bodies_beyond_the_bounds_are_refused_naming_the_field(
    client: httpx.AsyncClient, kwargs: dict[str, Any], status: int, field: str, says: str
) -> None:
    response = await client.post("/upload", **kwargs)
    assert response.status_code == status
    (error,) = response.json()["detail"]
    assert error["field"] == field and says in error["reason"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (  # cut short: a truncated file must never be stored as a document
            b'--b\r\nContent-Disposition: form-data; name="documents"; filename="a.txt"\r\n\r\n'
            b"half a fi",
            "ends before the closing multipart boundary",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n2\r\n--b--\r\n',
            "given twice",
        ),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", "no Content-Disposition"),
        (
            b'--b\r\nContent-Disposition: form-data; name="s"\r\n\r\n\xff\xfe\r\n--b--\r\n',
            "not UTF-8 text",
        ),
        (b"garbage without a boundary", "not valid multipart"),
    ],
)
async def test_bodies_that_are_not_whole_multipart_are_refused(
    client: httpx.AsyncClient, raw: bytes, says: str
) -> None:
    response = await client.post(
        "/upload", content=raw, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 422
    assert says in response.json()["detail"][0]["reason"]
