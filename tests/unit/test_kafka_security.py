"""The Kafka security settings, the broker's configuration, grants and secret files, without
a broker (the real broker's behaviour is in tests/security/test_kafka_access.py)."""

import datetime
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from infra.kafka_broker import server_properties
from infra.kafka_clients import KafkaCredentialsError, connection_options, read_kafka_password
from infra.kafka_security import (
    Grant,
    KafkaCredentials,
    Operation,
    PatternType,
    PrincipalKind,
    ResourceType,
    app_grants,
    check_name,
    outside_grants,
    scram_upsertion,
)
from infra.kafka_tls import BrokerTls
from infra.private_files import ensure_password, write_private
from infra.settings import KafkaSettingsError, Settings


def settings_of(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"RECTRACK_HOME": str(tmp_path), **env})


def test_security_is_on_unless_switched_off_by_name(tmp_path: Path) -> None:
    plain = settings_of(tmp_path)
    assert (plain.kafka_security_protocol, plain.kafka_sasl_mechanism) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )
    assert plain.kafka_principal == "rectrack-admin" and plain.kafka_ca_path is None
    tls = settings_of(tmp_path, RECTRACK_KAFKA_TLS="1")
    assert tls.kafka_security_protocol == "SASL_SSL"
    assert tls.kafka_ca_path == tmp_path.resolve() / "kafka" / "tls" / "ca.pem"
    external = settings_of(
        tmp_path, KAFKA_BOOTSTRAP_SERVERS="k:9092", RECTRACK_KAFKA_SECURITY_PROTOCOL="plaintext"
    )
    assert external.kafka_security_protocol == "PLAINTEXT" and not external.kafka_sasl


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"RECTRACK_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "the local broker takes SASL"),
        ({"RECTRACK_KAFKA_SECURITY_PROTOCOL": "SSL"}, "the local broker takes SASL"),
        ({"RECTRACK_KAFKA_SECURITY_PROTOCOL": "TLS"}, "RECTRACK_KAFKA_SECURITY_PROTOCOL"),
        ({"RECTRACK_KAFKA_SASL_MECHANISM": "PLAIN"}, "RECTRACK_KAFKA_SASL_MECHANISM"),
        (
            {"RECTRACK_KAFKA_TLS": "1", "RECTRACK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "contradicts",
        ),
    ],
)
def test_contradictory_or_unknown_kafka_settings_are_refused(
    tmp_path: Path, env: dict[str, str], names: str
) -> None:
    with pytest.raises(KafkaSettingsError, match=names):
        settings_of(tmp_path, **env)


def test_a_component_gets_its_own_principal_unless_one_was_named(tmp_path: Path) -> None:
    local = settings_of(tmp_path, RECTRACK_TOPIC_PREFIX="t1.")
    decider = local.for_component("decider")
    assert decider.kafka_principal == "t1.rectrack-decider"
    assert (
        decider.kafka_password_path == local.kafka_credentials_dir / "t1.rectrack-decider.password"
    )
    named = settings_of(
        tmp_path,
        RECTRACK_KAFKA_USERNAME="svc-decider",
        RECTRACK_KAFKA_PASSWORD_FILE=str(tmp_path / "pw"),
    )
    assert named.for_component("decider") == named
    assert named.kafka_password_path == (tmp_path / "pw").resolve()


def test_connection_options_carry_the_principal_and_refuse_an_open_password_file(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path).for_component("api")
    write_private(settings.kafka_password_path, b"s3cret-password\n")
    options = connection_options(settings)
    assert options["sasl_plain_username"] == "rectrack-api"
    assert options["sasl_plain_password"] == "s3cret-password"
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options
    settings.kafka_password_path.chmod(0o644)
    with pytest.raises(KafkaCredentialsError, match="readable by other users") as refused:
        connection_options(settings)
    assert "s3cret-password" not in str(refused.value)
    with pytest.raises(KafkaCredentialsError, match="cannot read"):
        read_kafka_password(tmp_path / "missing")


def test_generated_passwords_are_private_and_concurrent_callers_agree(tmp_path: Path) -> None:
    path = tmp_path / "creds" / "x.password"
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(ensure_password(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and len(found[0]) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["x.password"]  # no temporary left


def test_the_broker_config_has_no_anonymous_door(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, RECTRACK_KAFKA_PORT="19092")
    config = dict(
        line.split("=", 1)
        for line in server_properties(
            settings, tmp_path / "data", broker_password="pw-broker"
        ).splitlines()
        if line
    )
    assert config["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT"
    )
    assert "PLAINTEXT://" not in config["listeners"] and "localhost:19092" in config["listeners"]
    assert config["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["authorizer.class.name"].endswith("StandardAuthorizer")
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:rectrack-broker;User:rectrack-admin"
    # PLAIN on the controller listener knows exactly one user: the broker.
    assert (
        'user_rectrack-broker="pw-broker"'
        in config["listener.name.controller.plain.sasl.jaas.config"]
    )
    tls = BrokerTls(tmp_path / "tls")
    with_tls = server_properties(settings, tmp_path / "data", broker_password="pw", tls=(tls, "ks"))
    assert "CLIENT:SASL_SSL" in with_tls and f"keystore.location={tls.keystore}" in with_tls


def test_grants_are_least_privilege(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, RECTRACK_TOPIC_PREFIX="p.")
    t = settings.topics

    def writes(grants: list[Grant]) -> set[str]:
        return {g.name for g in grants if g.operation is Operation.WRITE}

    assert writes(app_grants(settings, "decider")) == {t.events, t.outcomes, t.dead_letters}
    assert writes(app_grants(settings, "api")) == {t.commands}
    assert writes(app_grants(settings, "projector")) == set()
    assert all(g.pattern is PatternType.LITERAL for g in app_grants(settings, "decider"))
    team = outside_grants(settings, "team-a", PrincipalKind.team)
    assert writes(team) == {t.commands}
    groups = [g for g in team if g.resource is ResourceType.GROUP]
    assert [(g.name, g.pattern) for g in groups] == [("team-a.", PatternType.PREFIXED)]
    subscriber = outside_grants(settings, "feed-b", PrincipalKind.subscriber)
    assert writes(subscriber) == set()
    assert {g.name for g in subscriber if g.resource is ResourceType.TOPIC} == {t.events}


@pytest.mark.parametrize("bad", ["rectrack-api", "Team", "a.b", "a b", "", "-a", "x" * 64])
def test_principal_names_are_short_slugs_not_the_apps(bad: str) -> None:
    with pytest.raises(ValueError):
        check_name(bad)


def test_scram_upsertion_is_rfc5802_hi_and_never_the_password() -> None:
    import hashlib

    name, mechanism, iterations, salt, salted = scram_upsertion("u", "pw", "SCRAM-SHA-512")
    assert (name, mechanism, iterations) == ("u", 2, 8192)
    assert salted == hashlib.pbkdf2_hmac("sha512", b"pw", salt, iterations)
    assert len(salt) == 32 and len(salted) == 64


def test_credentials_never_show_their_password() -> None:
    credentials = KafkaCredentials("h:1", "SASL_PLAINTEXT", "SCRAM-SHA-512", "u", "pw-123456")
    assert "pw-123456" not in repr(credentials) and "pw-123456" not in str(credentials)
    assert credentials.as_dict()["password"] == "pw-123456"
    assert "ssl_cafile" not in credentials.as_dict()


def test_the_broker_certificate_names_localhost_and_is_renewed_near_its_end(
    tmp_path: Path,
) -> None:
    tls = BrokerTls(tmp_path / "tls")
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    password = tls.ensure(now)
    for private in (tls.ca_key, tls.keystore, tls.keystore_password_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    _key, cert, chain = pkcs12.load_key_and_certificates(
        tls.keystore.read_bytes(), password.encode()
    )
    assert cert is not None
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert [c.subject for c in chain] == [ca.subject]

    same = tls.keystore.read_bytes()
    assert tls.ensure(now + datetime.timedelta(days=300)) == password
    assert tls.keystore.read_bytes() == same  # still far from its end
    tls.ensure(now + datetime.timedelta(days=380))
    assert tls.keystore.read_bytes() != same  # within 30 days of its end: a new one
