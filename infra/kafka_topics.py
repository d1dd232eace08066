"""The topics as the cluster has them: described, created, and checked against the settings.

The edge of `infra/topic_policy.py`: one Metadata request (live brokers, each topic's
partitions with their replicas and in-sync replicas) and one DescribeConfigs request turn into
`TopicState`s, which the pure `problems` judges. Every function takes a started admin client
(`infra.kafka_clients.admin_client`), as whichever principal the caller is; that principal
needs Describe and DescribeConfigs on the topics.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code
from aiokafka.protocol.metadata import MetadataRequest

from infra.settings import Settings
from infra.topic_policy import (
    FIXED_CONFIGS,
    MIN_INSYNC_REPLICAS,
    TopicCheckError,
    TopicPolicy,
    TopicState,
    check_creatable,
    problems_of,
    refusal,
    resolve_policy,
    topic_state,
    topic_summary,
)

log = structlog.get_logger(__name__)

CHECKED_CONFIGS = (MIN_INSYNC_REPLICAS, *FIXED_CONFIGS)
UNKNOWN_TOPIC = 3
TOPIC_ALREADY_EXISTS = 36
TOPIC_AUTHORIZATION_FAILED = 29


@dataclass(frozen=True)
class Described:
    """The cluster's live brokers and the named topics (None: the topic does not exist)."""

    brokers: int
    topics: dict[str, TopicState | None]


def _refused(
    principal: str, what: str, topic: str, code: int, message: str | None = None
) -> TopicCheckError:
    reason = for_code(code).__name__
    detail = f" ({message})" if message else ""
    hint = ""
    if code == TOPIC_AUTHORIZATION_FAILED:
        hint = (
            f"; {principal} may not: run `rectrack topics create` as an admin"
            if what == "create"
            else f"; {principal} needs Describe and DescribeConfigs on it"
        )
    return TopicCheckError(f"cannot {what} topic {topic}: {reason}{detail}{hint}")


async def describe(admin: AIOKafkaAdminClient, names: Sequence[str], principal: str) -> Described:
    """Live brokers and the named topics' partitions and configs; never creates a topic (a
    cluster with auto-creation on would otherwise make one with its defaults)."""
    request = MetadataRequest(list(names), allow_auto_topic_creation=False)
    metadata = (await admin._client.send(admin._client.get_random_node(), request)).to_object()
    found: dict[str, TopicState | None] = dict.fromkeys(names)
    described = {}
    for topic in metadata["topics"]:
        code = topic["error_code"]
        if code == UNKNOWN_TOPIC:
            continue
        if code == TOPIC_AUTHORIZATION_FAILED:
            raise _refused(principal, "describe", topic["topic"], code)
        described[topic["topic"]] = topic  # other errors (no leader yet): partitions as known
    if described:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(CHECKED_CONFIGS))
            for name in described
        ]
        for response in await admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                name, code = resource["resource_name"], resource["error_code"]
                if code == UNKNOWN_TOPIC:
                    continue  # deleted since the metadata answered
                if code:
                    raise _refused(
                        principal, "describe the configs of", name, code, resource["error_message"]
                    )
                configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
                found[name] = topic_state(described[name], configs)
    return Described(len(metadata["brokers"]), found)


def policy_for(settings: Settings, brokers: int) -> TopicPolicy:
    """The settings' topic policy on a cluster of `brokers` live brokers."""
    return resolve_policy(
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        min_insync_replicas=settings.min_insync_replicas,
        brokers=brokers,
    )


async def create(
    admin: AIOKafkaAdminClient, names: Sequence[str], policy: TopicPolicy, principal: str
) -> list[str]:
    """Create topics with the policy's partitions, replication factor and configs; return those
    this call made (one made meanwhile by someone else is left to the check)."""
    if not names:
        return []
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                policy.partitions,
                policy.replication_factor,
                topic_configs=policy.topic_configs(),
            )
            for name in names
        ]
    )
    created = []
    for topic in response.to_object()["topic_errors"]:
        code = topic["error_code"]
        if code == 0:
            created.append(topic["topic"])
        elif code != TOPIC_ALREADY_EXISTS:
            raise _refused(principal, "create", topic["topic"], code, topic.get("error_message"))
    await _wait_for_leaders(admin, created)
    return created


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    for _ in range(100):
        if not topics:
            return
        described = await admin.describe_topics(topics)
        if all(t["partitions"] and t["error_code"] == 0 for t in described):
            return
        await asyncio.sleep(0.1)


async def ensure(
    admin: AIOKafkaAdminClient, settings: Settings, names: Sequence[str], *, create_missing: bool
) -> list[str]:
    """Create the missing topics (if asked), then check every named one against the settings;
    return those created. Raises TopicCheckError naming each topic and setting that falls short,
    so a weaker topic that already existed is never silently accepted."""
    principal = settings.kafka_principal
    described = await describe(admin, names, principal)
    policy = policy_for(settings, described.brokers)
    missing = [name for name in names if described.topics[name] is None]
    created: list[str] = []
    if missing and create_missing:
        check_creatable(policy, described.brokers)
        created = await create(admin, missing, policy, principal)
        if created:
            log.info(
                "topics_created",
                topics=created,
                partitions=policy.partitions,
                replication_factor=policy.replication_factor,
                min_insync_replicas=policy.min_insync_replicas,
            )
        described = await describe(admin, names, principal)
    found = problems_of(described.topics, names, policy)
    if found:
        raise refusal(found)
    return created


@dataclass(frozen=True)
class TopicsReport:
    """The instance's topics for operators: `rectrack status`, GET /status and /metrics."""

    brokers: int
    states: dict[str, TopicState | None]
    policy: TopicPolicy | None  # None: the settings cannot hold on this cluster (see `refused`)
    refused: str | None = None

    @property
    def present(self) -> list[TopicState]:
        """The topics that exist."""
        return [s for s in self.states.values() if s is not None]

    @property
    def policy_text(self) -> str:
        """What the settings ask of every topic, in words."""
        if self.policy is None:
            return f"refused: {self.refused}"
        policy = self.policy
        source = policy.factor_source
        if policy.factor_derivation is None:
            source += f"; {self.brokers} live broker{'' if self.brokers == 1 else 's'}"
        return (
            f"factor {policy.replication_factor}, min.insync.replicas "
            f"{policy.min_insync_replicas} ({source})"
        )

    def policy_json(self) -> dict[str, Any]:
        """What the settings ask on this cluster, as GET /status shows it (nulls: refused)."""
        return {
            "brokers": self.brokers,
            "replication_factor": None if self.policy is None else self.policy.replication_factor,
            "min_insync_replicas": (
                None if self.policy is None else self.policy.min_insync_replicas
            ),
        }

    @property
    def topics(self) -> list[dict[str, Any]]:
        """Each topic's summary, in the instance's order."""
        return [topic_summary(name, state) for name, state in self.states.items()]


async def report(admin: AIOKafkaAdminClient, settings: Settings) -> TopicsReport:
    """Describe every topic of the instance and the policy the settings resolve to."""
    described = await describe(admin, settings.topics.all(), settings.kafka_principal)
    try:
        policy: TopicPolicy | None = policy_for(settings, described.brokers)
        refused = None
    except TopicCheckError as exc:
        policy, refused = None, str(exc)
    return TopicsReport(described.brokers, described.topics, policy, refused)
