"""The evidence routes' guards without a broker or database: the upload's body limit follows
RECTRACK_MAX_DOCUMENT_BYTES, documents always need a token, and the contract documents both."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infra.settings import DEFAULT_MAX_DOCUMENT_BYTES, Settings
from services.domain.commands import MAX_COMMAND_BYTES
from services.web.app import create_app
from services.web.evidence import evidence_body_limit

LIMIT = 1000
UPLOAD = "/recommendations/insp-1/r1/evidence"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env(
        {
            "RECTRACK_HOME": str(tmp_path),
            "RECTRACK_MAX_DOCUMENT_BYTES": str(LIMIT),
            "RECTRACK_PUBLIC_READS": "1",
        }
    )
    transport = httpx.ASGITransport(app=create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def test_the_document_limit_setting() -> None:
    assert Settings.from_env({}).max_document_bytes == DEFAULT_MAX_DOCUMENT_BYTES == 25 * 2**20
    assert Settings.from_env({"RECTRACK_MAX_DOCUMENT_BYTES": "5000"}).max_document_bytes == 5000
    for bad in ("0", "-1", "25MB"):
        with pytest.raises(ValueError, match="RECTRACK_MAX_DOCUMENT_BYTES"):
            Settings.from_env({"RECTRACK_MAX_DOCUMENT_BYTES": bad})


async def test_the_upload_route_takes_bodies_up_to_its_documents_limit_and_no_more(
    api: httpx.AsyncClient,
) -> None:
    # Larger than a command may be, within the upload's limit: refused only for want of a token.
    within = await api.post(UPLOAD, content=b"x" * (MAX_COMMAND_BYTES + 1))
    assert within.status_code == 401
    beyond = await api.post(UPLOAD, content=b"x" * (evidence_body_limit(LIMIT) + 1))
    assert beyond.status_code == 413
    assert beyond.json()["detail"][0]["reason"] == f"larger than {evidence_body_limit(LIMIT)} bytes"
    # Other routes keep theirs.
    command = await api.post("/commands", content=b"x" * (MAX_COMMAND_BYTES + 1))
    assert command.status_code == 413


async def test_a_document_always_needs_a_token_even_with_public_reads(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/documents/" + "a" * 64)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_contract_documents_the_multipart_upload_and_the_download(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    upload = document["paths"]["/recommendations/{recommendation_id}/evidence"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["evidence_id", "summary", "documents"]
    assert schema["properties"]["documents"]["items"] == {"type": "string", "format": "binary"}
    assert {"201", "202", "403", "409", "413", "415", "422"} <= set(upload["responses"])
    download = document["paths"]["/documents/{sha256}"]["get"]
    assert {"200", "401", "403", "404"} <= set(download["responses"])
    assert "application/pdf" in download["responses"]["200"]["content"]
