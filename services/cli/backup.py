"""Back up and restore what only PostgreSQL holds: the API tokens.

Everything else in the database is a read model, rebuilt from the log (`rectrack replay`, or
the projector by itself in a new database). The backup is one JSON file of mode 0600: tokens
are stored as SHA-256 hashes, which cannot be turned back into tokens, yet the file still says
who may do what, so it is kept like a password file.
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Self

import asyncpg
import orjson
import typer
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

from infra.private_files import read_private, write_private
from services.cli.output import console, fail, load_settings, with_connection
from services.web.tokens import TokenRecord, restore_token_records, token_records

BACKUP_FORMAT = "rectrack-backup"


class BackupError(RuntimeError):
    """A backup file that cannot be read or is not a rectrack backup."""


class Backup(BaseModel):
    """The file: what only PostgreSQL holds, one key per table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["rectrack-backup"]
    version: Literal[1]
    created_at: AwareDatetime
    schema_name: str  # the RECTRACK_DB_SCHEMA it was taken from, for the operator's eyes
    api_tokens: list[TokenRecord]

    @model_validator(mode="after")
    def _one_row_per_token(self) -> Self:
        for column in ("token_id", "token_hash"):
            values = [getattr(t, column) for t in self.api_tokens]
            if len(set(values)) != len(values):
                raise ValueError(f"api_tokens: a {column} appears twice")
        return self


def read_backup(path: Path) -> Backup:
    """A backup file, refused when others may read it or it is not a rectrack backup."""
    raw = read_private(
        path,
        BackupError,
        "the backup",
        "Give the file `rectrack backup -o FILE` wrote",
        exposed_hint=" (a backup lists who may do what: keep it like a password file)",
    )
    try:
        return Backup.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise BackupError(f"{path} is not a rectrack backup ({where}: {first['msg']})") from None


def backup(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="The file to write (mode 0600; replaced whole).")
    ],
) -> None:
    """Back up what only PostgreSQL holds (the API tokens, as hashes) to a 0600 JSON file.

    The read models need no backup: they are rebuilt from the log.
    """
    settings = load_settings()
    records = asyncio.run(with_connection(settings, token_records))
    document = Backup(
        format=BACKUP_FORMAT,
        version=1,
        created_at=datetime.now(UTC),
        schema_name=settings.db_schema,
        api_tokens=records,
    )
    write_private(out, orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    live = sum(r.revoked_at is None for r in records)
    console.print(f"backed up {len(records)} API tokens ({live} live) to {out}")


def restore(
    file: Annotated[Path, typer.Argument(help="A file `rectrack backup` wrote.")],
) -> None:
    """Put back the API tokens of a backup: missing ones are added, revocations applied.

    A restore never brings a revoked token back; a token revoked after the backup was taken
    is live again when the database was lost, so revoke it again (`rectrack tokens revoke`).
    """
    try:
        document = read_backup(file)
    except BackupError as exc:
        raise fail(str(exc)) from None
    settings = load_settings()
    try:
        done = asyncio.run(
            with_connection(settings, lambda conn: restore_token_records(conn, document.api_tokens))
        )
    except asyncpg.UniqueViolationError as exc:
        raise fail(f"a token of {file} clashes with another token here: {exc}") from None
    console.print(
        f"restored the API tokens of {file} (taken {document.created_at:%Y-%m-%d %H:%M:%S %Z} "
        f"from schema {document.schema_name}): {done.added} added, {done.revoked} revoked as "
        f"in the backup, {done.unchanged} already here"
    )
    console.print(
        "Tokens revoked after the backup was taken are live again: revoke them again "
        "(`rectrack tokens list`, `rectrack tokens revoke TOKEN_ID`)."
    )
