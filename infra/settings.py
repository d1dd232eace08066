"""Settings from the environment; every name is listed in the README."""

import difflib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from events.topics import Topics
from infra.private_files import read_private_text

DEFAULT_PARTITIONS = 6

# The local database: the app logs in as this role, which owns this database and the schemas it
# creates there, and nothing else (no superuser, no CREATEROLE, no CREATEDB).
APP_ROLE = "rectrack_app"
APP_DATABASE = "rectrack"
APP_PASSWORD_FILE = "postgres-app.password"
REDACTED = "***"

_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


class SettingsError(ValueError):
    """A setting is misspelt, of the wrong type or out of range; the message names it."""


class DatabaseCredentialsError(RuntimeError):
    """The database cannot be reached with the credentials we have; the message says what to do."""


class KafkaSettingsError(SettingsError):
    """The Kafka security settings contradict each other or name an unknown protocol."""


# Kafka's principals of a local broker. The broker's own principal talks to the controller and
# to itself; the admin is the CLI's (topics, principals, ACLs). Both are super users.
KAFKA_BROKER_PRINCIPAL = "rectrack-broker"
KAFKA_ADMIN_PRINCIPAL = "rectrack-admin"
KAFKA_CREDENTIALS_DIR = "kafka-credentials"
KAFKA_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
KAFKA_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")

# The local Kafka: one node, or a cluster of three on this machine (a majority of three
# survives losing any one). Node n (1, 2, 3) listens for clients on RECTRACK_KAFKA_PORT +
# 2(n-1) and for controllers on RECTRACK_KAFKA_CONTROLLER_PORT + 2(n-1): with the defaults
# 9092/9093, 9094/9095 and 9096/9097. Node 1 keeps the single node's ports.
KAFKA_BROKER_COUNTS = (1, 3)
KAFKA_NODE_PORT_STEP = 2
# In $RECTRACK_HOME/kafka/: how many nodes this home's Kafka was made with.
KAFKA_BROKERS_FILE = "brokers"


# Every RECTRACK_* variable rectrack reads (here, in infra/kafka_broker.py and in the Docker
# set-up); any other is refused at start, naming the closest known one (a misspelt setting
# would otherwise be ignored in silence).
KNOWN_SETTINGS = frozenset(
    {
        "RECTRACK_HOME",
        "RECTRACK_KAFKA_PORT",
        "RECTRACK_KAFKA_CONTROLLER_PORT",
        "RECTRACK_KAFKA_BROKERS",
        "RECTRACK_PG_PORT",
        "RECTRACK_DB_SCHEMA",
        "RECTRACK_API_HOST",
        "RECTRACK_API_PORT",
        "RECTRACK_TOPIC_PREFIX",
        "RECTRACK_PARTITIONS",
        "RECTRACK_REPLICATION_FACTOR",
        "RECTRACK_MIN_INSYNC_REPLICAS",
        "RECTRACK_LOG_LEVEL",
        "RECTRACK_LOG_FORMAT",
        "RECTRACK_PUBLIC_READS",
        "RECTRACK_WRITE_RATE",
        "RECTRACK_MAX_DOCUMENT_BYTES",
        "RECTRACK_PAPER_WORKERS",
        "RECTRACK_CACHE",
        "RECTRACK_KAFKA_SECURITY_PROTOCOL",
        "RECTRACK_KAFKA_TLS",
        "RECTRACK_KAFKA_SASL_MECHANISM",
        "RECTRACK_KAFKA_USERNAME",
        "RECTRACK_KAFKA_PASSWORD_FILE",
        "RECTRACK_KAFKA_CA_FILE",
        "RECTRACK_KEYS_DIR",
        "RECTRACK_GATEWAY_PUBLIC_KEYS",
        # Browser sessions (services/web/sessions.py).
        "RECTRACK_SESSION_IDLE_MINUTES",
        "RECTRACK_SESSION_HOURS",
        "RECTRACK_SECURE_COOKIES",
        # Metrics and health (README "Metrics and health").
        "RECTRACK_METRICS_TOKEN",
        "RECTRACK_METRICS_PORT",
        "RECTRACK_METRICS_HOST",
        "RECTRACK_DECIDER_METRICS_PORT",
        "RECTRACK_PROJECTOR_METRICS_PORT",
        # Docker Compose's choice of the database passwords (docker-compose.yml).
        "RECTRACK_PG_SUPERUSER_PASSWORD",
        "RECTRACK_APP_DB_PASSWORD",
    }
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")


def unknown_settings(env: dict[str, str]) -> list[str]:
    """One message per RECTRACK_* variable rectrack does not know, with the closest known."""
    found = []
    for name in sorted(n for n in env if n.startswith("RECTRACK_") and n not in KNOWN_SETTINGS):
        close = difflib.get_close_matches(name, sorted(KNOWN_SETTINGS), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (README: Environment)"
        found.append(f"unknown setting {name}{hint}")
    return found


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default or ""
    value = raw.lower()
    if value == "warn" and "warning" in allowed:
        return "warning"
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return value


def _port(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if not 1 <= value <= 65535:
        raise SettingsError(f"{name} must be a port from 1 to 65535, got {value}")
    return value


def read_secret(path: Path) -> str:
    """A database password kept in a file only its owner may read."""
    return read_private_text(
        path,
        DatabaseCredentialsError,
        "the database password",
        "`rectrack up` creates it, readable only by the user who ran it: run rectrack as "
        "that user with the same RECTRACK_HOME, or set DATABASE_URL",
        empty_hint="; `rectrack up` writes a new password",
    )


def redact_url(url: str) -> str:
    """A database URL fit to print or log: any password replaced by ***."""
    url = _PASSWORD_PARAM.sub(rf"\g<1>{REDACTED}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


DEFAULT_WRITE_RATE = "50:200"
# RECTRACK_MAX_DOCUMENT_BYTES: the largest evidence document an upload may hold (25 MiB).
DEFAULT_MAX_DOCUMENT_BYTES = 25 * 1024 * 1024


def _write_rate(env: dict[str, str]) -> tuple[float, int]:
    """RECTRACK_WRITE_RATE: "PER_SECOND[:BURST]" writes per API token; 0 turns the limit off."""
    raw = (env.get("RECTRACK_WRITE_RATE") or DEFAULT_WRITE_RATE).strip()
    rate_text, _, burst_text = raw.partition(":")
    try:
        rate = float(rate_text)
        # Without a burst, one second's worth (at least one request) may come at once.
        burst = int(burst_text) if burst_text else max(1, int(rate))
    except ValueError as exc:
        raise SettingsError(f"RECTRACK_WRITE_RATE must be PER_SECOND[:BURST], got {raw!r}") from exc
    if not rate >= 0 or burst < 1 or rate == float("inf"):
        raise SettingsError(f"RECTRACK_WRITE_RATE must be PER_SECOND[:BURST], got {raw!r}")
    return rate, burst


def _flag(env: dict[str, str], name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes")


def _kafka_protocol(env: dict[str, str]) -> str:
    """RECTRACK_KAFKA_SECURITY_PROTOCOL, else SASL with TLS when RECTRACK_KAFKA_TLS asks for it.

    Security is on unless switched off by name: PLAINTEXT is only ever what someone wrote.
    """
    tls = _flag(env, "RECTRACK_KAFKA_TLS")
    raw = (env.get("RECTRACK_KAFKA_SECURITY_PROTOCOL") or "").strip().upper()
    protocol = raw or ("SASL_SSL" if tls else "SASL_PLAINTEXT")
    if protocol not in KAFKA_PROTOCOLS:
        raise KafkaSettingsError(
            f"RECTRACK_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}, "
            f"got {raw!r}"
        )
    if tls and not protocol.endswith("SSL"):
        raise KafkaSettingsError(
            f"RECTRACK_KAFKA_TLS=1 contradicts RECTRACK_KAFKA_SECURITY_PROTOCOL={protocol}"
        )
    if not env.get("KAFKA_BOOTSTRAP_SERVERS") and protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise KafkaSettingsError(
            f"the local broker takes SASL_PLAINTEXT or SASL_SSL, not {protocol}; "
            "set KAFKA_BOOTSTRAP_SERVERS to use a cluster of your own"
        )
    return protocol


def _kafka_mechanism(env: dict[str, str]) -> str:
    raw = (env.get("RECTRACK_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").strip().upper()
    if raw not in KAFKA_MECHANISMS:
        raise KafkaSettingsError(
            f"RECTRACK_KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_MECHANISMS)}, "
            f"got {raw!r}"
        )
    return raw


def remembered_kafka_brokers(home: Path) -> int | None:
    """How many nodes this home's local Kafka was made with: its kafka/brokers file; 1 for a
    home whose single node was made before clusters existed; None before any was made."""
    file = home / "kafka" / KAFKA_BROKERS_FILE
    try:
        raw = file.read_text().strip()
    except FileNotFoundError:
        return 1 if (home / "kafka" / "data").exists() else None
    if raw not in {str(n) for n in KAFKA_BROKER_COUNTS}:
        raise KafkaSettingsError(f"{file} should say 1 or 3 (this home's Kafka nodes), not {raw!r}")
    return int(raw)


def _kafka_brokers(env: dict[str, str], home: Path) -> int:
    """RECTRACK_KAFKA_BROKERS (1 or 3), which must agree with what the home was made with;
    unset, the home's own number (1 for a new home)."""
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return 1  # nothing local is started
    raw = (env.get("RECTRACK_KAFKA_BROKERS") or "").strip()
    remembered = remembered_kafka_brokers(home)
    if not raw:
        return remembered or 1
    if raw not in {str(n) for n in KAFKA_BROKER_COUNTS}:
        raise KafkaSettingsError(
            f"RECTRACK_KAFKA_BROKERS (rectrack up --brokers) must be 1 or 3, got {raw!r}"
        )
    wanted = int(raw)
    if remembered is not None and remembered != wanted:
        raise KafkaSettingsError(
            f"RECTRACK_HOME {home} holds a Kafka of {remembered} node(s), not {wanted} "
            f"(RECTRACK_KAFKA_BROKERS / --brokers): leave the setting out to use the home's, "
            "or choose another RECTRACK_HOME"
        )
    return wanted


def _kafka_ports(kafka_port: int, controller_port: int, brokers: int) -> None:
    """Refuse client and controller ports of the nodes that would overlap."""
    step = KAFKA_NODE_PORT_STEP
    ports = [p + step * i for p in (kafka_port, controller_port) for i in range(brokers)]
    if len(set(ports)) != len(ports):
        raise KafkaSettingsError(
            f"the {brokers} Kafka nodes' ports overlap: clients on RECTRACK_KAFKA_PORT "
            f"({kafka_port}) + {step}(n-1), controllers on RECTRACK_KAFKA_CONTROLLER_PORT "
            f"({controller_port}) + {step}(n-1); choose ports further apart"
        )


def _path(env: dict[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).expanduser().resolve() if raw else None


def _positive(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


def _replication(env: dict[str, str]) -> tuple[int | None, int | None]:
    """RECTRACK_REPLICATION_FACTOR and RECTRACK_MIN_INSYNC_REPLICAS: whole numbers from 1, the
    second at most the first; unset (None) they are worked out from the cluster's size when
    topics are created or checked (infra/topic_policy.py)."""
    found: list[int | None] = []
    for name in ("RECTRACK_REPLICATION_FACTOR", "RECTRACK_MIN_INSYNC_REPLICAS"):
        raw = (env.get(name) or "").strip()
        if not raw:
            found.append(None)
            continue
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise KafkaSettingsError(f"{name} must be a whole number from 1, got {raw!r}")
        found.append(int(raw))
    factor, min_insync = found
    if factor is not None and min_insync is not None and min_insync > factor:
        raise KafkaSettingsError(
            f"RECTRACK_MIN_INSYNC_REPLICAS={min_insync} is more than "
            f"RECTRACK_REPLICATION_FACTOR={factor}: every write would be refused"
        )
    return factor, min_insync


@dataclass(frozen=True)
class Settings:
    """One rectrack instance's configuration."""

    home: Path
    kafka_port: int
    kafka_controller_port: int
    external_bootstrap: str | None
    pg_port: int
    external_database_url: str | None
    db_schema: str
    api_host: str
    api_port: int
    topic_prefix: str
    partitions: int
    log_level: str
    # RECTRACK_LOG_FORMAT: json or console; None: json unless stderr is a terminal.
    log_format: str | None = None
    public_reads: bool = False
    # Writes per second per API token and the burst allowed at once; a rate of 0 means no limit.
    write_rate: float = 50.0
    write_burst: int = 200
    paper_workers: int = 1
    # RECTRACK_MAX_DOCUMENT_BYTES: the largest document an evidence upload may hold, in bytes.
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    # Kafka: how every client connects, and as whom. Without a username, a process is this
    # home's admin (the CLI); `for_component` gives a component its own principal.
    kafka_security_protocol: str = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password_file: Path | None = None
    kafka_ca_file: Path | None = None
    # Gateway public keys (base64) the decider trusts as anchors; empty: this home's gateway
    # key (services/decider/keys.py). For a decider that does not share RECTRACK_HOME.
    gateway_public_keys: tuple[str, ...] = ()
    # RECTRACK_KEYS_DIR: the signing keys' folder, when not RECTRACK_HOME/keys.
    keys_folder: Path | None = None
    # RECTRACK_REPLICATION_FACTOR / RECTRACK_MIN_INSYNC_REPLICAS of every topic; None: from the
    # cluster's live brokers when topics are created or checked (infra/topic_policy.py).
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    # RECTRACK_KAFKA_BROKERS: the local Kafka's nodes (1 or 3), remembered by the home.
    kafka_brokers: int = 1
    # Browser sessions (services/web/sessions.py): ended after RECTRACK_SESSION_IDLE_MINUTES
    # without a request, and RECTRACK_SESSION_HOURS after sign-in whatever happens.
    session_idle_minutes: int = 30
    session_hours: int = 8
    # RECTRACK_SECURE_COOKIES=1: cookies are Secure even when the request reached us over plain
    # HTTP (TLS ended at a proxy); over https they always are.
    secure_cookies: bool = False
    # Metrics and health (README "Metrics and health"). RECTRACK_METRICS_TOKEN: a bearer token
    # that opens every /metrics (else the API's needs a reader token, like every read).
    # RECTRACK_METRICS_PORT: the API's metrics also on this port with no token (0: not served).
    # RECTRACK_DECIDER_METRICS_PORT / RECTRACK_PROJECTOR_METRICS_PORT: each worker's HTTP port
    # for /metrics and /health/*, by default the API's port + 1 and + 2 (0: not served).
    # RECTRACK_METRICS_HOST: the address those ports listen on.
    metrics_token: str | None = None
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    decider_metrics_port: int = 0
    projector_metrics_port: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read RECTRACK_* / KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL from the environment."""
        e = dict(os.environ if env is None else env)
        unknown = unknown_settings(e)
        if unknown:
            raise SettingsError("; ".join(unknown))
        write_rate, write_burst = _write_rate(e)
        replication_factor, min_insync_replicas = _replication(e)
        home = Path(e.get("RECTRACK_HOME") or Path.home() / ".rectrack").expanduser().resolve()
        kafka_port = _port(e, "RECTRACK_KAFKA_PORT", 9092)
        kafka_controller_port = _port(e, "RECTRACK_KAFKA_CONTROLLER_PORT", 9093)
        kafka_brokers = _kafka_brokers(e, home)
        api_port = _port(e, "RECTRACK_API_PORT", 8000)
        _kafka_ports(kafka_port, kafka_controller_port, kafka_brokers)
        return cls(
            home=home,
            kafka_port=kafka_port,
            kafka_controller_port=kafka_controller_port,
            external_bootstrap=e.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            pg_port=_port(e, "RECTRACK_PG_PORT", 55432),
            external_database_url=e.get("DATABASE_URL") or None,
            db_schema=e.get("RECTRACK_DB_SCHEMA") or "rectrack",
            api_host=e.get("RECTRACK_API_HOST") or "127.0.0.1",
            api_port=api_port,
            topic_prefix=e.get("RECTRACK_TOPIC_PREFIX", ""),
            partitions=_positive(e, "RECTRACK_PARTITIONS", DEFAULT_PARTITIONS),
            log_level=_choice(e, "RECTRACK_LOG_LEVEL", LOG_LEVELS, "info"),
            log_format=_choice(e, "RECTRACK_LOG_FORMAT", LOG_FORMATS, None) or None,
            public_reads=e.get("RECTRACK_PUBLIC_READS", "").lower() in ("1", "true", "yes"),
            write_rate=write_rate,
            write_burst=write_burst,
            paper_workers=_positive(e, "RECTRACK_PAPER_WORKERS", 1),
            max_document_bytes=_positive(
                e, "RECTRACK_MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES
            ),
            kafka_security_protocol=_kafka_protocol(e),
            kafka_sasl_mechanism=_kafka_mechanism(e),
            kafka_username=e.get("RECTRACK_KAFKA_USERNAME") or None,
            kafka_password_file=_path(e, "RECTRACK_KAFKA_PASSWORD_FILE"),
            kafka_ca_file=_path(e, "RECTRACK_KAFKA_CA_FILE"),
            gateway_public_keys=tuple(
                k.strip() for k in e.get("RECTRACK_GATEWAY_PUBLIC_KEYS", "").split(",") if k.strip()
            ),
            keys_folder=(
                Path(e["RECTRACK_KEYS_DIR"]).expanduser().resolve()
                if e.get("RECTRACK_KEYS_DIR")
                else None
            ),
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
            kafka_brokers=kafka_brokers,
            session_idle_minutes=_positive(e, "RECTRACK_SESSION_IDLE_MINUTES", 30),
            session_hours=_positive(e, "RECTRACK_SESSION_HOURS", 8),
            secure_cookies=_flag(e, "RECTRACK_SECURE_COOKIES"),
            metrics_token=e.get("RECTRACK_METRICS_TOKEN") or None,
            metrics_port=_int(e, "RECTRACK_METRICS_PORT", 0),
            metrics_host=e.get("RECTRACK_METRICS_HOST") or "127.0.0.1",
            decider_metrics_port=_int(e, "RECTRACK_DECIDER_METRICS_PORT", api_port + 1),
            projector_metrics_port=_int(e, "RECTRACK_PROJECTOR_METRICS_PORT", api_port + 2),
        )

    @property
    def bootstrap_servers(self) -> str:
        """The brokers clients connect to: every local node, so losing one loses nothing."""
        return self.external_bootstrap or ",".join(
            f"localhost:{port}" for port, _controller in self.kafka_node_ports.values()
        )

    @property
    def kafka_node_ports(self) -> dict[int, tuple[int, int]]:
        """Each local Kafka node's id and its (client, controller) ports."""
        step = KAFKA_NODE_PORT_STEP
        return {
            node: (
                self.kafka_port + step * (node - 1),
                self.kafka_controller_port + step * (node - 1),
            )
            for node in range(1, self.kafka_brokers + 1)
        }

    @property
    def kafka_principal(self) -> str:
        """The Kafka user this process authenticates as."""
        return self.kafka_username or KAFKA_ADMIN_PRINCIPAL

    @property
    def kafka_sasl(self) -> bool:
        """Clients authenticate with SASL/SCRAM."""
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_tls(self) -> bool:
        """Connections to the broker are encrypted (and the broker's certificate checked)."""
        return self.kafka_security_protocol.endswith("SSL")

    @property
    def kafka_credentials_dir(self) -> Path:
        """Where generated Kafka passwords live, one 0600 file per principal."""
        return self.home / KAFKA_CREDENTIALS_DIR

    @property
    def kafka_password_path(self) -> Path:
        """The file holding this process's Kafka password."""
        return self.kafka_password_file or self.kafka_password_path_of(self.kafka_principal)

    def kafka_password_path_of(self, principal: str) -> Path:
        """The generated password file of one of this home's principals."""
        return self.kafka_credentials_dir / f"{principal}.password"

    @property
    def kafka_ca_path(self) -> Path | None:
        """The CA that signs the broker's certificate: given, or the local broker's own."""
        if not self.kafka_tls:
            return None
        if self.kafka_ca_file is not None:
            return self.kafka_ca_file
        if self.external_bootstrap is None:
            return self.home / "kafka" / "tls" / "ca.pem"
        return None  # the system's trusted CAs

    def component_principal(self, component: str) -> str:
        """A component's own Kafka user: named like its consumer group, so unique per instance."""
        return f"{self.topic_prefix}rectrack-{component}"

    def for_component(self, component: str) -> "Settings":
        """These settings as a component connects: its own principal, unless one was named.

        A process given RECTRACK_KAFKA_USERNAME (a container with one credential, an external
        cluster) keeps it; otherwise it uses the principal this home generated for it.
        """
        if self.kafka_username is not None or not self.kafka_sasl:
            return self
        return replace(self, kafka_username=self.component_principal(component))

    @property
    def app_password_file(self) -> Path:
        """The local database's app role password (mode 0600, written by `rectrack up`)."""
        return self.home / APP_PASSWORD_FILE

    @property
    def database_url(self) -> str:
        """The PostgreSQL clients connect to: DATABASE_URL as given, else the local database
        as the app role, with its password read from `app_password_file`.

        It holds a password: print or log `database_url_redacted` instead.
        """
        if self.external_database_url:
            return self.external_database_url
        password = quote(read_secret(self.app_password_file), safe="")
        return f"postgresql://{APP_ROLE}:{password}@127.0.0.1:{self.pg_port}/{APP_DATABASE}"

    @property
    def database_url_redacted(self) -> str:
        """`database_url` without its password, to print or log (reads no password file)."""
        if self.external_database_url:
            return redact_url(self.external_database_url)
        return f"postgresql://{APP_ROLE}:{REDACTED}@127.0.0.1:{self.pg_port}/{APP_DATABASE}"

    @property
    def keys_dir(self) -> Path:
        """The stack's own signing keys (0700; each private key 0600): RECTRACK_KEYS_DIR, else
        RECTRACK_HOME/keys."""
        return self.keys_folder or self.home / "keys"

    @property
    def decider_key_file(self) -> Path:
        """The decider's private key, which seals every batch of events it appends."""
        return self.keys_dir / "decider.key"

    @property
    def gateway_key_file(self) -> Path:
        """The private key the API and the CLI sign every command with."""
        return self.keys_dir / "gateway.key"

    @property
    def trusted_deciders_dir(self) -> Path:
        """Public keys (`<key_id>.pub`) of every decider whose seals readers trust."""
        return self.keys_dir / "trusted-deciders"

    def component_port(self, component: str) -> int:
        """The HTTP port of a component's health (and metrics); 0 when it serves none."""
        return {
            "api": self.api_port,
            "decider": self.decider_metrics_port,
            "projector": self.projector_metrics_port,
        }[component]

    @property
    def api_url(self) -> str:
        """Where the API answers."""
        host = "localhost" if self.api_host in ("127.0.0.1", "0.0.0.0") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def topics(self) -> Topics:
        """This instance's topic names."""
        return Topics.with_prefix(self.topic_prefix)

    @property
    def run_dir(self) -> Path:
        """Pid files."""
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        """Process logs."""
        return self.home / "logs"
