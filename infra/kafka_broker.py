"""The local Apache Kafka (KRaft combined mode) run from Maven Central jars with Java 17.

One node, or a cluster of three on this machine (RECTRACK_KAFKA_BROKERS=3): each node is
broker and controller in one process, with its own directory, ports and pid file, and the
three form a static quorum (`controller.quorum.voters`), so the cluster keeps a controller and
accepts writes while any two nodes run. Every node has the same security, below.

No anonymous access. The client listener takes SASL/SCRAM (SASL_SSL when TLS is asked for)
and KRaft's StandardAuthorizer allows only what an ACL grants. The broker talks to the
controller listeners with SASL/PLAIN as its own principal, whose password is only in the 0600
server.properties (PLAIN's users are that file's, so no SCRAM credential has to exist before
the controller runs); it talks to itself and the other nodes over the client listener with
SCRAM. Both it and this home's admin are super users. Their SCRAM credentials are set through
the (active) controller's listener once the broker runs, so no password is ever on a command
line, and a home made before authentication existed is brought up to it on its first start.
"""

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.errors import KafkaError

from infra.kafka_clients import admin_client
from infra.kafka_security import SCRAM_MECHANISM_CODES, scram_upsertion
from infra.kafka_tls import BrokerTls
from infra.kafka_wire import (
    AlterUserScramCredentials,
    DescribeQuorum,
    DescribeUserScramCredentials,
)
from infra.private_files import ensure_password, write_private
from infra.processes import port_open, read_pid, require_free, spawn, stop_pid, wait_until
from infra.settings import (
    KAFKA_ADMIN_PRINCIPAL,
    KAFKA_BROKER_PRINCIPAL,
    KAFKA_BROKERS_FILE,
    KAFKA_NODE_PORT_STEP,
    Settings,
)

KAFKA_VERSION = "4.4.0"
BROKER_HEAP = "-Xmx1g"
# Three JVMs share this machine with PostgreSQL and the app.
CLUSTER_NODE_HEAP = "-Xmx512m"
# The Kafka error a controller that is not the active one answers writes with.
NOT_CONTROLLER = 41


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
    node_id: int = 1,
) -> str:
    """One node's configuration: broker and controller on localhost, a voter of the quorum of
    every node of the settings (one, or three).

    `tls` is the broker's TLS files and its keystore's password, for a SASL_SSL client
    listener. The result holds passwords: write it with mode 0600.
    """
    nodes = settings.kafka_node_ports
    port, controller = nodes[node_id]
    voters = ",".join(f"{n}@localhost:{c}" for n, (_p, c) in nodes.items())
    # Internal topics on every node; with three, a write to them needs two.
    replicas, min_isr = len(nodes), min(2, len(nodes))
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
            f"node.id={node_id}",
            f"controller.quorum.voters={voters}",
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
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
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
class KafkaNode:
    """One node of the local Kafka: a broker and a controller in one process.

    A single node keeps the layout homes had before clusters (kafka/, run/kafka.pid,
    logs/kafka.log); node n of a cluster has kafka/node-n/, run/kafka-n.pid, logs/kafka-n.log.
    """

    id: int
    client_port: int
    controller_port: int
    dir: Path
    pid_file: Path
    log_file: Path

    @property
    def address(self) -> str:
        """Where clients reach this node."""
        return f"localhost:{self.client_port}"

    @property
    def config(self) -> Path:
        """The node's server.properties (0600: it holds the broker's password)."""
        return self.dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        """The node's log directory, metadata log included."""
        return self.dir / "data"

    def pid(self) -> int | None:
        """The running node's pid, if any."""
        return read_pid(self.pid_file)

    def ready(self) -> bool:
        """The node answers on its client port (a broker opens it once it has joined)."""
        return port_open(self.client_port)

    def ports_named(self, single: bool) -> tuple[str, str]:
        """What the client and controller ports are called in an error about them."""
        if single:
            return (
                "the Kafka broker (RECTRACK_KAFKA_PORT)",
                "the Kafka controller (RECTRACK_KAFKA_CONTROLLER_PORT)",
            )
        offset = KAFKA_NODE_PORT_STEP * (self.id - 1)
        return (
            f"Kafka node {self.id}'s clients (RECTRACK_KAFKA_PORT + {offset})",
            f"Kafka node {self.id}'s controller (RECTRACK_KAFKA_CONTROLLER_PORT + {offset})",
        )


def kafka_nodes(settings: Settings) -> list[KafkaNode]:
    """The nodes of this home's local Kafka: their ids, ports, directories and pid files."""
    single = settings.kafka_brokers == 1
    return [
        KafkaNode(
            id=node,
            client_port=port,
            controller_port=controller,
            dir=settings.home / "kafka" / ("" if single else f"node-{node}"),
            pid_file=settings.run_dir / ("kafka.pid" if single else f"kafka-{node}.pid"),
            log_file=settings.log_dir / ("kafka.log" if single else f"kafka-{node}.log"),
        )
        for node, (port, controller) in settings.kafka_node_ports.items()
    ]


@dataclass(frozen=True)
class LocalKafka:
    """The broker, or the cluster of three nodes, of one RECTRACK_HOME."""

    settings: Settings

    @property
    def dir(self) -> Path:
        """Where config, data and logs of this Kafka live (TLS files shared by its nodes)."""
        return self.settings.home / "kafka"

    @property
    def nodes(self) -> list[KafkaNode]:
        """Every node, by id."""
        return kafka_nodes(self.settings)

    @property
    def single(self) -> bool:
        """One node rather than a cluster."""
        return self.settings.kafka_brokers == 1

    @property
    def pid_file(self) -> Path:
        """The pid file of node 1 (the only node, unless a cluster)."""
        return self.nodes[0].pid_file

    def pid(self) -> int | None:
        """The running pid of node 1 (the only node, unless a cluster), if any."""
        return self.nodes[0].pid()

    def pids(self) -> dict[int, int]:
        """Every running node's pid, by node id."""
        return {node.id: pid for node in self.nodes if (pid := node.pid()) is not None}

    def ready(self) -> bool:
        """Every node answers on its client port."""
        return all(node.ready() for node in self.nodes)

    def start(self, *, timeout: float = 90.0) -> bool:
        """Start every node that does not run yet; returns True when one was started now.

        A cluster's nodes are all spawned before any is waited for: a node opens its client
        port only once a majority of the quorum runs.
        """
        what = "Kafka broker" if self.single else f"Kafka cluster ({len(self.nodes)} nodes)"
        stopped = [node for node in self.nodes if node.pid() is None]
        if not stopped:
            wait_until(self.ready, timeout=timeout, what=what)
            # An admin password file deleted while the broker ran is made again here.
            asyncio.run(self.bootstrap_credentials(timeout=timeout))
            return False
        for node in stopped:
            clients, controllers = node.ports_named(self.single)
            require_free(node.client_port, clients)
            require_free(node.controller_port, controllers)
        lib = fetch_jars()
        self._remember_brokers()
        for node in stopped:
            self._write_config(node)
        self._format(lib, stopped)
        heap = BROKER_HEAP if self.single else CLUSTER_NODE_HEAP
        for node in stopped:
            spawn(
                self._java(lib, "kafka.Kafka", str(node.config), heap=heap),
                pid_file=node.pid_file,
                log_file=node.log_file,
            )
        wait_until(self.ready, timeout=timeout, what=what)
        asyncio.run(self.bootstrap_credentials(timeout=timeout))
        return True

    def _remember_brokers(self) -> None:
        """The home says how many nodes it has, so later commands need not be told."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / KAFKA_BROKERS_FILE).write_text(f"{self.settings.kafka_brokers}\n")

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

        Sent to a controller listener as the broker (PLAIN), which needs no SCRAM
        credential: the one way in when none exists yet. Only the active controller takes the
        change; the others answer NOT_CONTROLLER, and the next is asked. Then wait until the
        admin can log in on the client listener (credentials reach the brokers shortly after
        the controller).
        """
        mechanism = self.settings.kafka_sasl_mechanism
        files = {
            KAFKA_BROKER_PRINCIPAL: self.broker_password_file,
            KAFKA_ADMIN_PRINCIPAL: self.admin_password_file,
        }
        fresh = {name for name, path in files.items() if not path.exists()}
        wanted = {name: ensure_password(path) for name, path in files.items()}
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if await self._set_credentials(node, wanted, fresh, mechanism):
                    await self._wait_for_admin(timeout)
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("no Kafka controller took the SCRAM credentials (none active)")
            await asyncio.sleep(0.5)  # an election is under way

    async def _set_credentials(
        self, node: KafkaNode, wanted: dict[str, str], fresh: set[str], mechanism: str
    ) -> bool:
        """Give missing credentials through one node's controller listener; False when it is
        not the active controller (or, in a cluster, does not answer: the next is asked)."""
        try:
            with _quiet_plain_warning():
                conn = await create_conn(
                    "localhost",
                    node.controller_port,
                    security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN",
                    sasl_plain_username=KAFKA_BROKER_PRINCIPAL,
                    sasl_plain_password=wanted[KAFKA_BROKER_PRINCIPAL],
                )
            try:
                return await _upsert_missing(conn, wanted, fresh, mechanism)
            finally:
                conn.close()
        except KafkaError:
            if self.single:
                raise
            return False

    async def active_controller(self) -> int | None:
        """The id of the node that is the active controller now, as the cluster says
        (DescribeQuorum on the metadata log, asked as this home's admin); None when unknown."""
        admin = admin_client(self.settings)
        response = None
        try:
            await admin.start()
            # Any live broker passes it on; one just killed may still be in the metadata.
            for broker in admin._client.cluster.brokers():
                with contextlib.suppress(KafkaError):
                    response = await admin._client.send(broker.nodeId, DescribeQuorum())
                    break
        except KafkaError:
            return None
        finally:
            await admin.close()
        if response is None:
            return None
        leaders = [
            leader
            for _topic, partitions, _tags in response.topics
            for _index, code, leader, *_rest in partitions
            if code == 0
        ]
        return leaders[0] if response.error_code == 0 and leaders and leaders[0] >= 0 else None

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
        """Stop every node; returns True when one was running.

        A cluster's nodes are all asked to stop at once: stopped one after another, the last
        would wait for a quorum that has gone.
        """
        running = {node: pid for node in self.nodes if (pid := node.pid()) is not None}
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for node, pid in running.items():
            stop_pid(pid, timeout=30)
            node.pid_file.unlink(missing_ok=True)
        return bool(running)

    def _java(self, lib: Path, main_class: str, *args: str, heap: str = BROKER_HEAP) -> list[str]:
        log_config = _resource("log4j2.properties")
        return [
            "java",
            heap,
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

    def _write_config(self, node: KafkaNode) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        # One certificate serves every node: all listen on localhost, the name it carries.
        tls = self.tls if self.settings.kafka_tls else None
        write_private(
            node.config,
            server_properties(
                self.settings,
                node.data_dir,
                broker_password=ensure_password(self.broker_password_file),
                tls=None if tls is None else (tls, tls.ensure()),
                node_id=node.id,
            ).encode(),
        )

    def _format(self, lib: Path, nodes: list[KafkaNode]) -> None:
        """Format the storage of the nodes that have none, with the cluster's id (the one the
        formatted nodes have, or a new one), all at once."""
        unformatted = [n for n in nodes if not (n.data_dir / "meta.properties").exists()]
        if not unformatted:
            return
        known = [_cluster_id_of(n) for n in self.nodes if n not in unformatted]
        cluster = next((c for c in known if c), None) or cluster_id()
        tools = [
            subprocess.Popen(
                self._java(
                    lib,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster}",
                    "-c",
                    str(node.config),
                ),
                stdout=subprocess.DEVNULL,
            )
            for node in unformatted
        ]
        for tool in tools:
            if tool.wait() != 0:
                raise subprocess.CalledProcessError(tool.returncode, tool.args)


async def _upsert_missing(
    conn: AIOKafkaConnection, wanted: dict[str, str], fresh: set[str], mechanism: str
) -> bool:
    """Set the SCRAM credentials the controller lacks (or whose password file is new) on a
    controller connection; False when that controller is not the active one."""
    described = await conn.send(DescribeUserScramCredentials(list(wanted)))
    have = {
        user
        for user, code, _message, infos, _tags in described.results
        if code == 0 and any(m == SCRAM_MECHANISM_CODES[mechanism] for m, _, _ in infos)
    }
    missing = [n for n in wanted if n not in have or n in fresh]
    if not missing:
        return True
    response = await conn.send(
        AlterUserScramCredentials([], [scram_upsertion(n, wanted[n], mechanism) for n in missing])
    )
    codes = {user: code for user, code, _message, _tags in response.results}
    if any(code == NOT_CONTROLLER for code in codes.values()):
        return False
    refused = [(user, code) for user, code in codes.items() if code]
    if refused:
        raise RuntimeError(f"the Kafka controller refused SCRAM credentials: {refused}")
    return True


def _cluster_id_of(node: KafkaNode) -> str | None:
    """The cluster id a node's storage was formatted with."""
    with contextlib.suppress(OSError):
        for line in (node.data_dir / "meta.properties").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
    return None


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
