"""A single-node Apache Kafka (KRaft combined mode) run from Maven Central jars with Java 17."""

import base64
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.processes import port_open, read_pid, require_free, spawn, stop_pid, wait_until
from infra.settings import Settings

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


def server_properties(settings: Settings, data_dir: Path) -> str:
    """The broker's configuration: one node acting as broker and controller on localhost."""
    port, controller = settings.kafka_port, settings.kafka_controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@localhost:{controller}",
            f"listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=PLAINTEXT://localhost:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
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
        return True

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

    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "server.properties"
        config.write_text(server_properties(self.settings, self.dir / "data"))
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
