"""A single-node Apache Kafka (KRaft combined mode) run from Maven Central jars with Java 17.

No anonymous access. The client listener takes SASL/SCRAM (SASL_SSL when TLS is asked for)
and KRaft's StandardAuthorizer allows only what an ACL grants. The broker talks to its own
controller listener with SASL/PLAIN as its own principal, whose password is only in the 0600
server.properties (PLAIN's users are that file's, so no SCRAM credential has to exist before
the controller runs); it talks to itself over the client listener with SCRAM. Both it and this
home's admin are super users. Their SCRAM credentials are set through the controller listener
once the broker runs, so no password is ever on a command line, and a home made before
authentication existed is brought up to it on its first start.
"""

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError

from infra.kafka_clients import admin_client
from infra.kafka_security import SCRAM_MECHANISM_CODES, scram_upsertion
from infra.kafka_tls import BrokerTls
from infra.kafka_wire import AlterUserScramCredentials, DescribeUserScramCredentials
from infra.private_files import ensure_password, write_private
from infra.processes import port_open, read_pid, require_free, spawn, stop_pid, wait_until
from infra.settings import KAFKA_ADMIN_PRINCIPAL, KAFKA_BROKER_PRINCIPAL, Settings

KAFKA_VERSION = "4.4.0"
BROKER_HEAP = "-Xmx1g"


def jar_cache() -> Path:
    """Jars live outside the checkout and outside RECTRACK_HOME, shared by every instance."""
    base = os.environ.get("RECTRACK_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "rectrack" / f"kafka-{KAFKA_VERSION}" / "lib"


def _resource(name: str) -> Path:
    return Path(str(resources.files("infra.kafka").joinpath(name)))


def fetch_jars() -> Path:
    """Fetch the broker's jars with Maven once; later calls reuse the cache."""
    lib = jar_cache()
    marker = lib / ".complete"
    if marker.exists():
        return lib
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka jars; install maven")
    lib.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(_resource("pom.xml")),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    marker.write_text(KAFKA_VERSION)
    return lib


def _jaas(module: str, password: str, *, plain_user: bool = False) -> str:
    # Generated passwords are URL-safe base64: nothing in them needs quoting.
    user = f' user_{KAFKA_BROKER_PRINCIPAL}="{password}"' if plain_user else ""
    return (
        f"org.apache.kafka.common.security.{module} required "
        f'username="{KAFKA_BROKER_PRINCIPAL}" password="{password}"{user};'
    )


def server_properties(
    settings: Settings,
    data_dir: Path,
    *,
    broker_password: str,
    tls: tuple[BrokerTls, str] | None = None,
) -> str:
    """The broker's configuration: one node acting as broker and controller on localhost.

    `tls` is the broker's TLS files and its keystore's password, for a SASL_SSL client
    listener. The result holds passwords: write it with mode 0600.
    """
    port, controller = settings.kafka_port, settings.kafka_controller_port
    mechanism = settings.kafka_sasl_mechanism
    scram = mechanism.lower()
    client_protocol = "SASL_SSL" if tls is not None else "SASL_PLAINTEXT"
    tls_lines = []
    if tls is not None:
        files, keystore_password = tls
        tls_lines = [
            "listener.name.client.ssl.keystore.type=PKCS12",
            f"listener.name.client.ssl.keystore.location={files.keystore}",
            f"listener.name.client.ssl.keystore.password={keystore_password}",
            f"listener.name.client.ssl.key.password={keystore_password}",
            # The broker connects to itself over this listener and checks its own certificate.
            "listener.name.client.ssl.truststore.type=PEM",
            f"listener.name.client.ssl.truststore.location={files.ca_cert}",
            "listener.name.client.ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@localhost:{controller}",
            f"listeners=CLIENT://localhost:{port},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=CLIENT://localhost:{port}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:{client_protocol}",
            "inter.broker.listener.name=CLIENT",
            # Clients: SCRAM only. The broker to itself: SCRAM as its own principal.
            f"listener.name.client.sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.client.{scram}.sasl.jaas.config="
            + _jaas("scram.ScramLoginModule", broker_password),
            # The controller listener (localhost): PLAIN with one user, the broker itself.
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            + _jaas("plain.PlainLoginModule", broker_password, plain_user=True),
            *tls_lines,
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{KAFKA_BROKER_PRINCIPAL};User:{KAFKA_ADMIN_PRINCIPAL}",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.ms=-1",
            # rectrack creates its own topics with explicit settings; Faust declares its internals.
            "auto.create.topics.enable=false",
            "",
        ]
    )


def cluster_id() -> str:
    """A random KRaft cluster id: base64 of a UUID, never starting with '-'.

    One id in 64 would otherwise start with '-' and be read as an option by the storage tool.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass(frozen=True)
class LocalKafka:
    """The broker of one RECTRACK_HOME."""

    settings: Settings

    @property
    def dir(self) -> Path:
        """Where config, data and logs of this broker live."""
        return self.settings.home / "kafka"

    @property
    def pid_file(self) -> Path:
        """The broker's pid file."""
        return self.settings.run_dir / "kafka.pid"

    def pid(self) -> int | None:
        """The running broker's pid, if any."""
        return read_pid(self.pid_file)

    def ready(self) -> bool:
        """The broker answers on its client port."""
        return port_open(self.settings.kafka_port)

    def start(self, *, timeout: float = 90.0) -> bool:
        """Start the broker unless it runs already; returns True when it was started now."""
        if self.pid() is not None:
            wait_until(self.ready, timeout=timeout, what="Kafka broker")
            # An admin password file deleted while the broker ran is made again here.
            asyncio.run(self.bootstrap_credentials(timeout=timeout))
            return False
        require_free(self.settings.kafka_port, "the Kafka broker (RECTRACK_KAFKA_PORT)")
        require_free(
            self.settings.kafka_controller_port,
            "the Kafka controller (RECTRACK_KAFKA_CONTROLLER_PORT)",
        )
        lib = fetch_jars()
        config = self._write_config()
        self._format_once(lib, config)
        spawn(
            self._java(lib, "kafka.Kafka", str(config)),
            pid_file=self.pid_file,
            log_file=self.settings.log_dir / "kafka.log",
        )
        wait_until(self.ready, timeout=timeout, what="Kafka broker")
        asyncio.run(self.bootstrap_credentials(timeout=timeout))
        return True

    @property
    def broker_password_file(self) -> Path:
        """The broker principal's password (0600); also written into server.properties."""
        return self.settings.kafka_password_path_of(KAFKA_BROKER_PRINCIPAL)

    @property
    def admin_password_file(self) -> Path:
        """This home's admin password (0600): the CLI's principal."""
        return self.settings.kafka_password_path_of(KAFKA_ADMIN_PRINCIPAL)

    async def bootstrap_credentials(self, *, timeout: float = 60.0) -> None:
        """Give the broker and admin principals SCRAM credentials if the broker lacks them
        (or their password file was just made).

        Sent to the controller listener as the broker (PLAIN), which needs no SCRAM
        credential: the one way in when none exists yet. Then wait until the admin can log in
        on the client listener (credentials reach the broker shortly after the controller).
        """
        mechanism = self.settings.kafka_sasl_mechanism
        files = {
            KAFKA_BROKER_PRINCIPAL: self.broker_password_file,
            KAFKA_ADMIN_PRINCIPAL: self.admin_password_file,
        }
        fresh = {name for name, path in files.items() if not path.exists()}
        wanted = {name: ensure_password(path) for name, path in files.items()}
        with _quiet_plain_warning():
            conn = await create_conn(
                "localhost",
                self.settings.kafka_controller_port,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_plain_username=KAFKA_BROKER_PRINCIPAL,
                sasl_plain_password=wanted[KAFKA_BROKER_PRINCIPAL],
            )
        try:
            described = await conn.send(DescribeUserScramCredentials(list(wanted)))
            have = {
                user
                for user, code, _message, infos, _tags in described.results
                if code == 0 and any(m == SCRAM_MECHANISM_CODES[mechanism] for m, _, _ in infos)
            }
            missing = [n for n in wanted if n not in have or n in fresh]
            if missing:
                response = await conn.send(
                    AlterUserScramCredentials(
                        [], [scram_upsertion(n, wanted[n], mechanism) for n in missing]
                    )
                )
                refused = [(user, code) for user, code, _message, _tags in response.results if code]
                if refused:
                    raise RuntimeError(f"the Kafka controller refused SCRAM credentials: {refused}")
        finally:
            conn.close()
        await self._wait_for_admin(timeout)

    async def _wait_for_admin(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            admin = admin_client(self.settings)
            try:
                await admin.start()
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
            finally:
                await admin.close()

    def stop(self) -> bool:
        """Stop the broker; returns True when one was running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout=30)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _java(self, lib: Path, main_class: str, *args: str) -> list[str]:
        log_config = _resource("log4j2.properties")
        return [
            "java",
            BROKER_HEAP,
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            f"{lib}/*",
            main_class,
            *args,
        ]

    @property
    def tls(self) -> BrokerTls:
        """The broker's CA, certificate and keystore (made when TLS is asked for)."""
        return BrokerTls(self.dir / "tls")

    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        tls = self.tls if self.settings.kafka_tls else None
        config = self.dir / "server.properties"
        write_private(
            config,
            server_properties(
                self.settings,
                self.dir / "data",
                broker_password=ensure_password(self.broker_password_file),
                tls=None if tls is None else (tls, tls.ensure()),
            ).encode(),
        )
        return config

    def _format_once(self, lib: Path, config: Path) -> None:
        if (self.dir / "data" / "meta.properties").exists():
            return
        subprocess.run(
            self._java(
                lib,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id()}",
                "-c",
                str(config),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )


@contextlib.contextmanager
def _quiet_plain_warning() -> Iterator[None]:
    """aiokafka warns that PLAIN sends its password in the clear. The controller listener
    binds localhost only, where nobody but root (who can read the password file) could see it.
    """
    logger = logging.getLogger("aiokafka.conn")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
