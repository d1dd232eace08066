"""Replication from settings on the real (one-broker) cluster: topics are created with the
configured replication factor and min.insync.replicas, a topic weaker than the settings stops
`ensure_topics` and every component at start with a message naming topic and setting, and
`rectrack status`, GET /status and /metrics show each topic's replication.

Every test owns its topics through a prefix of its own (the status and metrics of the running
stack are read, never changed)."""

import asyncio
import dataclasses
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.kafka_clients import admin_client, ensure_topics
from infra.kafka_security import prepare_kafka
from infra.kafka_topics import Described, describe
from infra.settings import Settings
from infra.topic_policy import FIXED_CONFIGS, TopicCheckError
from tests.cli import rectrack
from tests.e2e.helpers import bearer

pytestmark = pytest.mark.integration


def own(settings: Settings, **changes: object) -> Settings:
    """The session's broker and database, with topics of this test's own."""
    prefix = f"repl-{uuid.uuid4().hex[:8]}."
    return dataclasses.replace(settings, topic_prefix=prefix, **changes)  # type: ignore[arg-type]


def env_of(run_env: dict[str, str], mine: Settings, **extra: str) -> dict[str, str]:
    """The session's environment for `mine`'s topics."""
    return {**run_env, "RECTRACK_TOPIC_PREFIX": mine.topic_prefix, **extra}


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = admin_client(settings)
    await client.start()
    yield client
    await client.close()


async def described(admin: AIOKafkaAdminClient, mine: Settings) -> Described:
    return await describe(admin, mine.topics.all(), mine.kafka_principal)


async def precreate(admin: AIOKafkaAdminClient, name: str, partitions: int, **configs: str) -> None:
    """A topic made by someone else, before rectrack looks at it."""
    response = await admin.create_topics(
        [NewTopic(name, partitions, 1, topic_configs={**FIXED_CONFIGS, **configs})]
    )
    assert [t["error_code"] for t in response.to_object()["topic_errors"]] == [0]
    for _ in range(100):
        [topic] = await admin.describe_topics([name])
        if topic["error_code"] == 0 and topic["partitions"]:
            return
        await asyncio.sleep(0.1)


async def test_topics_are_created_with_the_configured_replication(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    for mine in (own(settings), own(settings, replication_factor=1, min_insync_replicas=1)):
        assert await ensure_topics(mine) == list(mine.topics.all())
        found = await described(admin, mine)
        assert found.brokers == 1
        for name in mine.topics.all():
            state = found.topics[name]
            assert state is not None, name
            assert len(state.partitions) == mine.partitions
            assert (state.replication_factor, state.min_insync_replicas) == (1, 1)
            assert state.under_replicated_partitions == 0
            # Set on the topic itself, not inherited from the broker's defaults.
            assert {k: state.configs[k] for k in FIXED_CONFIGS} == dict(FIXED_CONFIGS)
        assert await ensure_topics(mine) == []  # checked again, nothing new
    resources = [ConfigResource(ConfigResourceType.TOPIC, mine.topics.events)]
    [response] = await admin.describe_configs(resources, include_synonyms=False)
    entries = response.to_object()["resources"][0]["config_entries"]
    source = {e["config_names"]: e["config_source"] for e in entries}
    dynamic_topic_config = 1
    assert source["min.insync.replicas"] == dynamic_topic_config
    assert source["retention.bytes"] == dynamic_topic_config


async def test_more_replicas_than_the_one_broker_are_refused_naming_the_setting(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    mine = own(settings, replication_factor=2)
    with pytest.raises(TopicCheckError) as refused:
        await ensure_topics(mine)
    assert "RECTRACK_REPLICATION_FACTOR=2 asks for 2 replicas" in str(refused.value)
    assert "1 live broker" in str(refused.value)
    assert set((await described(admin, mine)).topics.values()) == {None}  # nothing made
    # Topics made with one replica are weaker than a factor of 2, each named.
    await ensure_topics(dataclasses.replace(mine, replication_factor=None))
    with pytest.raises(TopicCheckError) as weaker:
        await ensure_topics(mine)
    for name in mine.topics.all():
        assert (
            f"topic {name}: replication factor 1; RECTRACK_REPLICATION_FACTOR asks for at least 2"
        ) in str(weaker.value)


async def test_a_minimum_in_sync_above_what_one_broker_gives_is_refused_naming_it(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    mine = own(settings, min_insync_replicas=2)
    with pytest.raises(TopicCheckError, match="RECTRACK_MIN_INSYNC_REPLICAS=2 is more than"):
        await ensure_topics(mine)
    assert set((await described(admin, mine)).topics.values()) == {None}


async def test_a_weaker_topic_that_existed_is_never_silently_accepted(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    mine = own(settings)
    t = mine.topics
    await precreate(admin, t.events, mine.partitions, **{"cleanup.policy": "compact"})
    await precreate(admin, t.outcomes, mine.partitions - 1)
    with pytest.raises(TopicCheckError) as refused:
        await ensure_topics(mine)
    lines = str(refused.value).splitlines()[1:]
    assert len(lines) == 2, lines
    assert f"topic {t.events}: cleanup.policy=compact" in lines[0]
    assert f"topic {t.outcomes}: {mine.partitions - 1} partitions" in lines[1]
    assert "RECTRACK_PARTITIONS" in lines[1]
    # The missing ones were still made as asked; only the weak ones stand in the way.
    found = await described(admin, mine)
    assert found.topics[t.commands] is not None and found.topics[t.dead_letters] is not None


@pytest.mark.parametrize(
    ("component", "weaken", "extra", "said"),
    [
        ("api", ("outcomes", 0, {"cleanup.policy": "compact"}), {}, "cleanup.policy=compact"),
        ("decider", ("events", -1, {}), {}, "RECTRACK_PARTITIONS asks for exactly"),
        ("projector", ("events", 0, {"retention.ms": "86400000"}), {}, "retention.ms=86400000"),
        (
            "decider",
            None,
            {"RECTRACK_REPLICATION_FACTOR": "2"},
            "RECTRACK_REPLICATION_FACTOR=2 asks for 2 replicas",
        ),
    ],
)
async def test_a_component_refuses_to_start_on_a_weaker_topic(
    settings: Settings,
    run_env: dict[str, str],
    admin: AIOKafkaAdminClient,
    component: str,
    weaken: tuple[str, int, dict[str, str]] | None,
    extra: dict[str, str],
    said: str,
) -> None:
    mine = own(settings)
    named = ""
    if weaken is not None:
        which, fewer, configs = weaken
        named = getattr(mine.topics, which)
        await precreate(admin, named, mine.partitions + fewer, **configs)
    done = await asyncio.to_thread(
        rectrack, env_of(run_env, mine, **extra), "run", "-c", component, check=False, timeout=120
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert said in done.stderr
    assert not named or f"topic {named}: " in done.stderr


async def test_a_component_with_its_own_principal_checks_the_topics_it_uses(
    settings: Settings, run_env: dict[str, str], admin: AIOKafkaAdminClient
) -> None:
    """An existing instance's topic, weakened later, stops a component that logs in as itself
    (so it reads the topic's configs with its own DescribeConfigs grant)."""
    mine = own(settings)
    await prepare_kafka(mine, ("projector",))
    compacted = {**FIXED_CONFIGS, "cleanup.policy": "compact", "min.insync.replicas": "1"}
    await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, mine.topics.events, compacted)]
    )
    principal = mine.component_principal("projector")
    done = await asyncio.to_thread(
        rectrack,
        env_of(run_env, mine, RECTRACK_KAFKA_USERNAME=principal),
        "run",
        "-c",
        "projector",
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"topic {mine.topics.events}: cleanup.policy=compact" in done.stderr
    assert mine.topics.commands not in done.stderr  # not a topic the projector uses


def topic_row(name: str, *cells: object) -> re.Pattern[str]:
    """A row of `rectrack status`'s topics table."""
    return re.compile(
        re.escape(name) + "".join(rf"\s*│\s*{re.escape(str(c))}" for c in cells) + r"\s*│"
    )


async def test_rectrack_status_shows_each_topics_replication(
    settings: Settings, run_env: dict[str, str], pool: asyncpg.Pool
) -> None:
    mine = own(settings)
    env = env_of(run_env, mine)
    # Whether the session's app runs yet or not (status exits 1 while it does not): the topics.
    before = (await asyncio.to_thread(rectrack, env, "status", check=False)).stdout
    for name in mine.topics.all():
        assert topic_row(name, "missing").search(before), before
    await ensure_topics(mine)
    status = (await asyncio.to_thread(rectrack, env, "status", check=False)).stdout
    assert re.search(r"replication factor\s*┃\s*min ISR\s*┃\s*under-replicated", status), status
    assert (
        "Replication: factor 1, min.insync.replicas 1 (RECTRACK_REPLICATION_FACTOR unset: "
        "min(3, 1 live broker))\n"
    ) in status
    for name in mine.topics.all():
        assert topic_row(name, mine.partitions, 1, 1, 0).search(status), status


async def test_status_and_metrics_show_each_topics_replication(
    stack: Settings, pool: asyncpg.Pool
) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        status = (await api.get("/status", headers=await bearer(pool, "viewer"))).json()
        viewer = await bearer(pool, "viewer")
        metrics = (await api.get("/metrics", headers=viewer)).text.splitlines()
    assert status["replication"] == {
        "brokers": 1,
        "replication_factor": 1,
        "min_insync_replicas": 1,
    }
    assert status["topics"] == [
        {
            "topic": name,
            "exists": True,
            "partitions": stack.partitions,
            "replication_factor": 1,
            "min_insync_replicas": 1,
            "under_replicated_partitions": 0,
        }
        for name in stack.topics.all()
    ]
    for name in stack.topics.all():
        assert f'rectrack_topic_replication_factor{{topic="{name}"}} 1.0' in metrics
        assert f'rectrack_topic_min_insync_replicas{{topic="{name}"}} 1.0' in metrics
        assert f'rectrack_topic_under_replicated_partitions{{topic="{name}"}} 0.0' in metrics
    assert 'rectrack_projection_lag{projection="recommendations"}' in " ".join(metrics)
