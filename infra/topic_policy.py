"""What this instance's topics must be, and how a described topic falls short of it.

Pure: no Kafka here, so every rule is tested without a broker. `infra/kafka_topics.py` describes
the real topics and hands them to `problems`.

The log is the system of record, so every topic is kept forever (`retention.ms` and
`retention.bytes` -1), never compacted (`cleanup.policy=delete`), never led by a replica that
missed acknowledged writes (`unclean.leader.election.enable=false`), has exactly
RECTRACK_PARTITIONS partitions (commands and events are co-partitioned), and has at least the
replication factor and `min.insync.replicas` the settings ask for. With acks=all a write is
acknowledged once `min.insync.replicas` replicas have it, so an acknowledged event survives the
loss of any `min.insync.replicas` - 1 disks.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REPLICATION_FACTOR_SETTING = "RECTRACK_REPLICATION_FACTOR"
MIN_INSYNC_REPLICAS_SETTING = "RECTRACK_MIN_INSYNC_REPLICAS"
PARTITIONS_SETTING = "RECTRACK_PARTITIONS"
# Without RECTRACK_REPLICATION_FACTOR: this many replicas, or one per broker if fewer.
DEFAULT_MAX_REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = "min.insync.replicas"
# Topic configs every topic has, whatever the settings. Checked value for value.
FIXED_CONFIGS: Mapping[str, str] = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "unclean.leader.election.enable": "false",
}
_WHY = {
    "retention.ms": "the log is kept forever",
    "retention.bytes": "the log is kept forever",
    "cleanup.policy": "the log is never compacted",
    "unclean.leader.election.enable": "a replica that missed acknowledged writes never leads",
}


class TopicCheckError(RuntimeError):
    """A topic is weaker than the settings ask, or the settings cannot hold on this cluster.

    The message names each topic and the setting (or topic config) it falls short of.
    """


def default_min_insync_replicas(replication_factor: int) -> int:
    """RECTRACK_MIN_INSYNC_REPLICAS when unset: 2 from a factor of 3 up, else 1.

    With 3 or more replicas an acknowledged write is on two brokers, and writes go on while one
    broker is away. With 2, asking for both would stop every write while either is away, so it
    is 1 (set 2 explicitly to prefer durability over availability); with 1 it can only be 1.
    """
    return 2 if replication_factor >= 3 else 1


@dataclass(frozen=True)
class TopicPolicy:
    """What every topic of the instance must have, with the settings resolved on a cluster."""

    partitions: int
    replication_factor: int
    min_insync_replicas: int
    # How an unset RECTRACK_REPLICATION_FACTOR was worked out ("min(3, 1 live broker)");
    # None: it was set.
    factor_derivation: str | None = None

    def topic_configs(self) -> dict[str, str]:
        """The configs a new topic is created with."""
        return {**FIXED_CONFIGS, MIN_INSYNC_REPLICAS: str(self.min_insync_replicas)}

    @property
    def factor_source(self) -> str:
        """Where the factor comes from, for messages."""
        if self.factor_derivation is None:
            return f"{REPLICATION_FACTOR_SETTING}={self.replication_factor}"
        return f"{REPLICATION_FACTOR_SETTING} unset: {self.factor_derivation}"


def resolve_policy(
    *,
    partitions: int,
    replication_factor: int | None,
    min_insync_replicas: int | None,
    brokers: int,
) -> TopicPolicy:
    """The policy on a cluster of `brokers` live brokers; unset settings take their defaults.

    Refuses (naming RECTRACK_MIN_INSYNC_REPLICAS) a minimum in-sync count above the factor,
    which would refuse every write.
    """
    derivation = None
    if replication_factor is None:
        factor = max(1, min(DEFAULT_MAX_REPLICATION_FACTOR, brokers))
        derivation = f"min({DEFAULT_MAX_REPLICATION_FACTOR}, {_brokers(brokers)})"
    else:
        factor = replication_factor
    min_isr = (
        default_min_insync_replicas(factor) if min_insync_replicas is None else min_insync_replicas
    )
    policy = TopicPolicy(partitions, factor, min_isr, derivation)
    if min_isr > factor:
        raise TopicCheckError(
            f"{MIN_INSYNC_REPLICAS_SETTING}={min_isr} is more than the replication factor "
            f"{factor} ({policy.factor_source}): every write would be refused; set "
            f"{MIN_INSYNC_REPLICAS_SETTING} to at most {factor}"
        )
    return policy


def _brokers(count: int) -> str:
    return f"{count} live broker{'' if count == 1 else 's'}"


def check_creatable(policy: TopicPolicy, brokers: int) -> None:
    """Refuse, naming RECTRACK_REPLICATION_FACTOR, to create topics with more replicas than
    the cluster has live brokers (Kafka would refuse, or place them nowhere)."""
    if policy.replication_factor > brokers:
        raise TopicCheckError(
            f"{policy.factor_source} asks for {policy.replication_factor} replicas of each "
            f"partition, but the cluster has {_brokers(brokers)}: "
            f"set {REPLICATION_FACTOR_SETTING} to at most {brokers}, or add brokers"
        )


@dataclass(frozen=True)
class PartitionReplicas:
    """One partition as the cluster's metadata describes it."""

    partition: int
    replicas: int
    in_sync: int

    @property
    def under_replicated(self) -> bool:
        """Some replica has fallen behind (or its broker is away)."""
        return self.in_sync < self.replicas


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster describes it: its partitions' replicas and its configs."""

    name: str
    partitions: tuple[PartitionReplicas, ...]
    configs: Mapping[str, str]

    @property
    def replication_factor(self) -> int:
        """The fewest replicas any partition has (0 without partitions)."""
        return min((p.replicas for p in self.partitions), default=0)

    @property
    def min_insync_replicas(self) -> int | None:
        """`min.insync.replicas` in force (the topic's, or the broker default); None if unknown."""
        raw = self.configs.get(MIN_INSYNC_REPLICAS)
        try:
            return None if raw is None else int(raw)
        except ValueError:
            return None

    @property
    def under_replicated_partitions(self) -> int:
        """Partitions whose in-sync replicas are fewer than their replicas."""
        return sum(p.under_replicated for p in self.partitions)


def topic_summary(name: str, state: TopicState | None) -> dict[str, Any]:
    """The fields `rectrack status` and GET /status show of one topic (None: it is missing)."""
    if state is None:
        return {
            "topic": name,
            "exists": False,
            "partitions": 0,
            "replication_factor": None,
            "min_insync_replicas": None,
            "under_replicated_partitions": None,
        }
    return {
        "topic": name,
        "exists": True,
        "partitions": len(state.partitions),
        "replication_factor": state.replication_factor,
        "min_insync_replicas": state.min_insync_replicas,
        "under_replicated_partitions": state.under_replicated_partitions,
    }


def prometheus_text(states: Sequence[TopicState]) -> str:
    """Per topic gauges as Prometheus text (the API's /metrics parses it into its registry)."""

    def label(state: TopicState) -> str:
        escaped = state.name.replace("\\", "\\\\").replace('"', '\\"')
        return f'{{topic="{escaped}"}}'

    gauges: list[tuple[str, str, Callable[[TopicState], int | None]]] = [
        (
            "rectrack_topic_replication_factor",
            "Replicas of each partition of the topic (the fewest of any partition).",
            lambda s: s.replication_factor,
        ),
        (
            "rectrack_topic_min_insync_replicas",
            "min.insync.replicas in force: replicas an acks=all write must reach.",
            lambda s: s.min_insync_replicas,
        ),
        (
            "rectrack_topic_under_replicated_partitions",
            "Partitions of the topic whose in-sync replicas are fewer than their replicas.",
            lambda s: s.under_replicated_partitions,
        ),
    ]
    lines = []
    for name, help_text, value in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{label(s)} {value(s)}" for s in states if value(s) is not None]
    return "\n".join(lines) + "\n"


def topic_state(described: Mapping[str, Any], configs: Mapping[str, str]) -> TopicState:
    """A TopicState from one topic of a Metadata response (as aiokafka's `to_object` gives it:
    `topic`, `partitions` with `partition`, `replicas`, `isr`) and the topic's configs."""
    return TopicState(
        name=described["topic"],
        partitions=tuple(
            sorted(
                (
                    PartitionReplicas(p["partition"], len(p["replicas"]), len(p["isr"]))
                    for p in described["partitions"]
                ),
                key=lambda p: p.partition,
            )
        ),
        configs=dict(configs),
    )


@dataclass(frozen=True)
class Problem:
    """One way a topic falls short: which setting (or topic config) it fails, found vs wanted."""

    topic: str
    setting: str
    found: str
    wanted: str
    hint: str = ""

    def __str__(self) -> str:
        said = f"topic {self.topic}: {self.found}; {self.wanted}"
        return f"{said} ({self.hint})" if self.hint else said


def problems(name: str, state: TopicState | None, policy: TopicPolicy) -> list[Problem]:
    """Every way the topic `name` (None: it does not exist) is weaker than the policy."""
    if state is None:
        return [
            Problem(
                name,
                "exists",
                "does not exist",
                "every topic of the instance must exist",
                "`rectrack topics create` makes it",
            )
        ]
    found: list[Problem] = []
    if len(state.partitions) != policy.partitions:
        found.append(
            Problem(
                name,
                PARTITIONS_SETTING,
                f"{len(state.partitions)} partitions",
                f"{PARTITIONS_SETTING} asks for exactly {policy.partitions}",
                "commands and events are co-partitioned, and adding partitions would move "
                "keys to other partitions",
            )
        )
    if state.replication_factor < policy.replication_factor:
        found.append(
            Problem(
                name,
                REPLICATION_FACTOR_SETTING,
                f"replication factor {state.replication_factor}",
                f"{REPLICATION_FACTOR_SETTING} asks for at least {policy.replication_factor}"
                + (f" ({policy.factor_source})" if policy.factor_derivation else ""),
                "add replicas with kafka-reassign-partitions, or set "
                f"{REPLICATION_FACTOR_SETTING}={state.replication_factor} to accept fewer",
            )
        )
    min_isr = state.min_insync_replicas
    if min_isr is None or min_isr < policy.min_insync_replicas:
        found.append(
            Problem(
                name,
                MIN_INSYNC_REPLICAS_SETTING,
                f"{MIN_INSYNC_REPLICAS}={'unknown' if min_isr is None else min_isr}",
                f"{MIN_INSYNC_REPLICAS_SETTING} asks for at least {policy.min_insync_replicas}",
                f"raise the topic's {MIN_INSYNC_REPLICAS} with kafka-configs --alter",
            )
        )
    for config, wanted in FIXED_CONFIGS.items():
        value = state.configs.get(config)
        if value != wanted:
            found.append(
                Problem(
                    name,
                    config,
                    f"{config}={'unknown' if value is None else value}",
                    f"{_WHY[config]}: {config} must be {wanted}",
                )
            )
    return found


def problems_of(
    states: Mapping[str, TopicState | None], names: Sequence[str], policy: TopicPolicy
) -> list[Problem]:
    """The problems of several topics, in the order named."""
    return [p for name in names for p in problems(name, states.get(name), policy)]


def refusal(found: Sequence[Problem]) -> TopicCheckError:
    """The error that lists every problem, one per line."""
    lines = "\n".join(f"  - {p}" for p in found)
    return TopicCheckError(f"topics weaker than this instance's settings:\n{lines}")
