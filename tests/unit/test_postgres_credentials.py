"""Database credentials: redaction, password files, and refusing a home made with trust auth."""

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from infra.postgres import (
    LocalPostgres,
    TrustAuthenticationError,
    scram_verifier,
    trust_lines,
    write_secret,
)
from infra.processes import free_port
from infra.settings import DatabaseCredentialsError, Settings, read_secret, redact_url

# A pg_hba.conf as `initdb --auth=trust` writes it (comments trimmed).
TRUST_HBA = """\
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        (
            "postgresql://app:p%40ss@db/x?sslmode=require",
            "postgresql://app:***@db/x?sslmode=require",
        ),
        ("postgresql://db/x?user=app&password=s3cret", "postgresql://db/x?user=app&password=***"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("host=db user=app password=s3cret", "host=db user=app password=***"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_local_url_is_the_app_role_with_the_password_of_its_file(tmp_path: Path) -> None:
    settings = Settings.from_env({"RECTRACK_HOME": str(tmp_path), "RECTRACK_PG_PORT": "6000"})
    with pytest.raises(DatabaseCredentialsError, match=re.escape("postgres-app.password")):
        _ = settings.database_url
    write_secret(settings.app_password_file, "pw-of-the-app")
    assert (
        settings.database_url == "postgresql://rectrack_app:pw-of-the-app@127.0.0.1:6000/rectrack"
    )
    assert "pw-of-the-app" not in settings.database_url_redacted
    external = Settings.from_env(
        {"RECTRACK_HOME": str(tmp_path), "DATABASE_URL": "postgresql://u:p@h/d"}
    )
    assert external.database_url == "postgresql://u:p@h/d"
    assert external.database_url_redacted == "postgresql://u:***@h/d"


def test_a_password_file_is_created_0600_and_refused_once_others_can_read_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret"
    write_secret(path, "pw")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_secret(path) == "pw"
    path.chmod(0o644)
    with pytest.raises(DatabaseCredentialsError, match="chmod 600"):
        read_secret(path)


def test_the_scram_verifier_is_the_one_of_rfc_7677() -> None:
    # RFC 7677's example: user "user", password "pencil", this salt, 4096 iterations. A server
    # holding our verifier must accept the example's client proof and give its signature.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt=salt)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    assert (method, iterations_salt) == ("SCRAM-SHA-256", "4096:W22ZaJ0SNY7soEsUEjb6gQ==")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    auth_message = (
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = hmac.digest(server_key, auth_message.encode(), hashlib.sha256)
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.digest(stored_key, auth_message.encode(), hashlib.sha256)
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_only_methods_that_ask_for_no_password_count_as_trust() -> None:
    assert trust_lines(TRUST_HBA) == [
        "local all all trust",
        "host all all 127.0.0.1/32 trust",
        "host replication all ::1/128 trust",
    ]
    assert trust_lines(TRUST_HBA.replace("trust", "scram-sha-256")) == []


def test_a_home_made_with_trust_auth_is_refused_with_what_to_do(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"RECTRACK_HOME": str(tmp_path), "RECTRACK_PG_PORT": str(free_port())}
    )
    pg = LocalPostgres(settings)
    pg.data_dir.mkdir()
    (pg.data_dir / "PG_VERSION").write_text("18\n")
    (pg.data_dir / "pg_hba.conf").write_text(TRUST_HBA)
    with pytest.raises(TrustAuthenticationError, match="trust authentication") as refused:
        pg.start()
    assert "rectrack replay" in str(refused.value) and "mv " in str(refused.value)
    assert pg.pid() is None


def test_a_home_whose_superuser_password_is_gone_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"RECTRACK_HOME": str(tmp_path)})
    pg = LocalPostgres(settings)
    pg.data_dir.mkdir()
    (pg.data_dir / "PG_VERSION").write_text("18\n")
    (pg.data_dir / "pg_hba.conf").write_text(TRUST_HBA.replace("trust", "scram-sha-256"))
    with pytest.raises(
        DatabaseCredentialsError, match=re.escape("postgres-superuser.password is missing")
    ):
        pg.check_authentication()
