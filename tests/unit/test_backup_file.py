"""The backup file of what only PostgreSQL holds: read back as written, refused when exposed or
when it is not a rectrack backup."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.private_files import write_private
from services.cli.backup import Backup, BackupError, read_backup
from services.web.tokens import TokenRecord, token_hash

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def token(name: str, revoked: bool = False) -> TokenRecord:
    return TokenRecord(
        token_id=uuid.uuid4(),
        name=name,
        team="ops",
        role="viewer",
        token_hash=token_hash(f"rt_{name}"),
        created_at=NOW,
        revoked_at=NOW if revoked else None,
    )


def written(path: Path, tokens: list[TokenRecord]) -> Path:
    document = Backup(
        format="rectrack-backup",
        version=1,
        created_at=NOW,
        schema_name="rectrack",
        api_tokens=tokens,
    )
    write_private(path, orjson.dumps(document.model_dump(mode="json")))
    return path


def test_a_backup_reads_back_as_written(tmp_path: Path) -> None:
    tokens = [token("a"), token("b", revoked=True)]
    path = written(tmp_path / "backup.json", tokens)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_backup(path).api_tokens == tokens


def test_a_backup_others_may_read_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path / "backup.json", [token("a")])
    path.chmod(0o644)
    with pytest.raises(BackupError, match="readable by other users"):
        read_backup(path)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d["api_tokens"][0].update(role="root"), "api_tokens.0.role"),
        (lambda d: d["api_tokens"][0].update(token_hash="not-a-hash"), "token_hash"),
        (lambda d: d["api_tokens"].append(dict(d["api_tokens"][0])), "token_id appears twice"),
        (lambda d: d.update(extra="field"), "extra"),
    ],
)
def test_a_file_that_is_not_a_rectrack_backup_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], says: str
) -> None:
    path = written(tmp_path / "backup.json", [token("a")])
    document = orjson.loads(path.read_bytes())
    change(document)
    write_private(path, orjson.dumps(document))
    with pytest.raises(BackupError, match="is not a rectrack backup") as refused:
        read_backup(path)
    assert says in str(refused.value)
