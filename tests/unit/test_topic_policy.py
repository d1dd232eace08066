"""Replication from settings, without a broker: the two settings, the policy they resolve to on
a cluster, and every way a described topic falls short (infra/topic_policy.py). The real
broker's side is tests/integration/test_replication.py."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.faust_app import make_app
from infra.kafka_clients import durable_producer
from infra.kafka_security import Operation, ResourceType, app_grants, component_topics
from infra.settings import KafkaSettingsError, Settings
from infra.topic_policy import (
    FIXED_CONFIGS,
    MIN_INSYNC_REPLICAS,
    PartitionReplicas,
    TopicCheckError,
    TopicPolicy,
    TopicState,
    check_creatable,
    problems,
    problems_of,
    prometheus_text,
    refusal,
    resolve_policy,
    topic_state,
    topic_summary,
)

FACTOR = "RECTRACK_REPLICATION_FACTOR"
MIN_ISR = "RECTRACK_MIN_INSYNC_REPLICAS"
POLICY = TopicPolicy(partitions=3, replication_factor=3, min_insync_replicas=2)


def settings_of(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"RECTRACK_HOME": str(tmp_path), **env})


def healthy(name: str = "p.rectrack.events", **configs: str) -> TopicState:
    """A topic as POLICY asks: 3 partitions of 3 replicas, all in sync, kept forever."""
    return TopicState(
        name,
        tuple(PartitionReplicas(p, 3, 3) for p in range(3)),
        {**FIXED_CONFIGS, MIN_INSYNC_REPLICAS: "2", **configs},
    )


# --- the settings ---


def test_unset_the_settings_leave_both_to_the_cluster(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    assert (settings.replication_factor, settings.min_insync_replicas) == (None, None)
    blank = settings_of(tmp_path, **{FACTOR: " ", MIN_ISR: ""})
    assert (blank.replication_factor, blank.min_insync_replicas) == (None, None)


def test_set_the_settings_are_whole_numbers(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, **{FACTOR: "3", MIN_ISR: " 2 "})
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    alone = settings_of(tmp_path, **{MIN_ISR: "2"})
    assert (alone.replication_factor, alone.min_insync_replicas) == (None, 2)


@pytest.mark.parametrize("name", [FACTOR, MIN_ISR])
@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "²", "3x", "+2"])
def test_a_bad_value_is_refused_naming_the_variable(tmp_path: Path, name: str, bad: str) -> None:
    with pytest.raises(KafkaSettingsError, match=name) as refused:
        settings_of(tmp_path, **{name: bad})
    assert repr(bad) in str(refused.value)


def test_a_minimum_above_the_factor_is_refused_naming_the_minimum(tmp_path: Path) -> None:
    with pytest.raises(KafkaSettingsError, match=f"{MIN_ISR}=3 is more than {FACTOR}=2"):
        settings_of(tmp_path, **{FACTOR: "2", MIN_ISR: "3"})
    assert settings_of(tmp_path, **{FACTOR: "2", MIN_ISR: "2"}).min_insync_replicas == 2


# --- the policy on a cluster ---


@pytest.mark.parametrize(
    ("brokers", "factor", "min_isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_unset_the_factor_is_three_or_one_per_broker_and_the_minimum_follows(
    brokers: int, factor: int, min_isr: int
) -> None:
    policy = resolve_policy(
        partitions=6, replication_factor=None, min_insync_replicas=None, brokers=brokers
    )
    assert (policy.partitions, policy.replication_factor, policy.min_insync_replicas) == (
        6,
        factor,
        min_isr,
    )
    assert policy.factor_source == f"{FACTOR} unset: min(3, {brokers} live broker" + (
        ")" if brokers == 1 else "s)"
    )
    check_creatable(policy, brokers)  # a derived factor always fits the cluster


def test_set_values_are_kept_whatever_the_cluster() -> None:
    policy = resolve_policy(partitions=6, replication_factor=2, min_insync_replicas=2, brokers=5)
    assert (policy.replication_factor, policy.min_insync_replicas) == (2, 2)
    assert policy.factor_source == f"{FACTOR}=2"
    five = resolve_policy(partitions=6, replication_factor=5, min_insync_replicas=None, brokers=5)
    assert five.min_insync_replicas == 2


def test_a_minimum_above_the_factor_the_cluster_gives_is_refused_naming_the_minimum() -> None:
    with pytest.raises(TopicCheckError) as refused:
        resolve_policy(partitions=6, replication_factor=None, min_insync_replicas=2, brokers=1)
    assert f"{MIN_ISR}=2 is more than the replication factor 1" in str(refused.value)
    assert f"{FACTOR} unset: min(3, 1 live broker)" in str(refused.value)


def test_more_replicas_than_live_brokers_cannot_be_created_naming_the_factor() -> None:
    policy = resolve_policy(partitions=6, replication_factor=2, min_insync_replicas=None, brokers=1)
    with pytest.raises(TopicCheckError) as refused:
        check_creatable(policy, 1)
    assert f"{FACTOR}=2 asks for 2 replicas" in str(refused.value)
    assert "1 live broker" in str(refused.value)
    check_creatable(policy, 2)


def test_new_topics_are_kept_forever_with_the_minimum_in_sync() -> None:
    assert POLICY.topic_configs() == {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "unclean.leader.election.enable": "false",
        "min.insync.replicas": "2",
    }


# --- a described topic against the policy ---


def test_a_topic_as_the_policy_asks_has_no_problems() -> None:
    assert problems("p.rectrack.events", healthy(), POLICY) == []


def test_a_stronger_topic_is_accepted() -> None:
    stronger = TopicState(
        "p.rectrack.events",
        tuple(PartitionReplicas(p, 5, 5) for p in range(3)),
        {**FIXED_CONFIGS, MIN_INSYNC_REPLICAS: "3"},
    )
    assert problems("p.rectrack.events", stronger, POLICY) == []


def with_partitions(*replicas: int) -> TopicState:
    state = healthy()
    parts = tuple(PartitionReplicas(p, r, r) for p, r in enumerate(replicas))
    return TopicState(state.name, parts, state.configs)


@pytest.mark.parametrize(
    ("state", "setting", "found"),
    [
        (with_partitions(3, 3), "RECTRACK_PARTITIONS", "2 partitions"),
        (with_partitions(3, 3, 3, 3), "RECTRACK_PARTITIONS", "4 partitions"),
        (with_partitions(1, 1, 1), FACTOR, "replication factor 1"),
        (with_partitions(3, 2, 3), FACTOR, "replication factor 2"),
        (healthy(**{MIN_INSYNC_REPLICAS: "1"}), MIN_ISR, "min.insync.replicas=1"),
        (healthy(**{MIN_INSYNC_REPLICAS: "x"}), MIN_ISR, "min.insync.replicas=unknown"),
        (healthy(**{"retention.ms": "604800000"}), "retention.ms", "retention.ms=604800000"),
        (healthy(**{"retention.bytes": "1073741824"}), "retention.bytes", "retention.bytes="),
        (healthy(**{"cleanup.policy": "compact"}), "cleanup.policy", "cleanup.policy=compact"),
        (healthy(**{"cleanup.policy": "compact,delete"}), "cleanup.policy", "compact,delete"),
        (
            healthy(**{"unclean.leader.election.enable": "true"}),
            "unclean.leader.election.enable",
            "unclean.leader.election.enable=true",
        ),
    ],
)
def test_each_weakness_is_one_problem_naming_topic_and_setting(
    state: TopicState, setting: str, found: str
) -> None:
    [problem] = problems(state.name, state, POLICY)
    assert problem.topic == state.name and problem.setting == setting
    said = str(problem)
    assert said.startswith(f"topic {state.name}: ") and setting in said and found in said


def test_a_config_the_cluster_did_not_describe_is_a_problem() -> None:
    described = dict(healthy().configs)
    del described["cleanup.policy"], described[MIN_INSYNC_REPLICAS]
    state = TopicState("t", healthy().partitions, described)
    assert {p.setting for p in problems("t", state, POLICY)} == {"cleanup.policy", MIN_ISR}


def test_a_missing_topic_is_a_problem_saying_how_to_make_it() -> None:
    [problem] = problems("p.rectrack.outcomes", None, POLICY)
    assert problem.setting == "exists"
    assert "p.rectrack.outcomes" in str(problem) and "rectrack topics create" in str(problem)


def test_a_derived_factor_says_how_it_was_derived() -> None:
    derived = resolve_policy(
        partitions=3, replication_factor=None, min_insync_replicas=None, brokers=3
    )
    [problem] = problems("t", with_partitions(1, 1, 1), derived)
    assert f"{FACTOR} asks for at least 3 ({FACTOR} unset: min(3, 3 live brokers))" in str(problem)


def test_the_refusal_lists_every_problem_of_every_topic_one_per_line() -> None:
    states: Mapping[str, TopicState | None] = {
        "a": healthy("a", **{"cleanup.policy": "compact"}),
        "b": None,
        "c": healthy("c"),
    }
    found = problems_of(states, ["a", "b", "c"], POLICY)
    assert [(p.topic, p.setting) for p in found] == [("a", "cleanup.policy"), ("b", "exists")]
    message = str(refusal(found))
    assert message.splitlines()[1:] == [f"  - {p}" for p in found]


# --- from the cluster's answers, and for operators ---


def described(partitions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"topic": "t", "error_code": 0, "partitions": partitions}


def test_a_described_topic_counts_its_under_replicated_partitions() -> None:
    state = topic_state(
        described(
            [
                {"partition": 1, "replicas": [1, 2, 3], "isr": [1]},
                {"partition": 0, "replicas": [1, 2, 3], "isr": [3, 1, 2]},
                {"partition": 2, "replicas": [2, 3, 1], "isr": [2, 3]},
            ]
        ),
        {MIN_INSYNC_REPLICAS: "2"},
    )
    assert [p.partition for p in state.partitions] == [0, 1, 2]
    assert (state.replication_factor, state.min_insync_replicas) == (3, 2)
    assert state.under_replicated_partitions == 2
    assert topic_summary("t", state) == {
        "topic": "t",
        "exists": True,
        "partitions": 3,
        "replication_factor": 3,
        "min_insync_replicas": 2,
        "under_replicated_partitions": 2,
    }
    assert topic_summary("gone", None)["exists"] is False


def test_a_topic_without_partitions_has_no_replicas() -> None:
    state = topic_state(described([]), {})
    assert (state.replication_factor, state.min_insync_replicas) == (0, None)
    assert {"RECTRACK_PARTITIONS", FACTOR, MIN_ISR} <= {
        p.setting for p in problems("t", state, POLICY)
    }


def test_prometheus_gauges_per_topic() -> None:
    lagging = TopicState(
        'odd"name',
        (PartitionReplicas(0, 3, 2), PartitionReplicas(1, 3, 3)),
        {MIN_INSYNC_REPLICAS: "2"},
    )
    unknown = TopicState("p.rectrack.commands", (PartitionReplicas(0, 1, 1),), {})
    text = prometheus_text([lagging, unknown])
    lines = text.splitlines()
    assert text.endswith("\n")
    assert 'rectrack_topic_replication_factor{topic="odd\\"name"} 3' in lines
    assert 'rectrack_topic_min_insync_replicas{topic="odd\\"name"} 2' in lines
    assert 'rectrack_topic_under_replicated_partitions{topic="odd\\"name"} 1' in lines
    assert 'rectrack_topic_replication_factor{topic="p.rectrack.commands"} 1' in lines
    assert 'rectrack_topic_under_replicated_partitions{topic="p.rectrack.commands"} 0' in lines
    assert not any("min_insync" in line and "commands" in line for line in lines)
    for gauge in ("replication_factor", "min_insync_replicas", "under_replicated_partitions"):
        assert f"# TYPE rectrack_topic_{gauge} gauge" in lines


# --- nothing lowers the producers' acknowledgement ---


async def test_producers_wait_for_every_in_sync_replica_and_never_duplicate(
    tmp_path: Path,
) -> None:
    settings = settings_of(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS="localhost:1",
        RECTRACK_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
    )
    producer = durable_producer(settings)  # the decider's and the API gateway's
    try:
        assert producer._sender._acks == -1  # acks=all
        assert producer._txn_manager is not None  # idempotent
    finally:
        await producer.stop()
    assert make_app(settings, "decider").conf.producer_acks == -1


def test_each_component_may_read_the_configs_of_exactly_the_topics_it_uses(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path, RECTRACK_TOPIC_PREFIX="p.")
    t = settings.topics
    expected = {
        "decider": (t.commands, t.events, t.outcomes, t.dead_letters),
        "projector": (t.events,),
        "api": (t.commands, t.events, t.outcomes, t.dead_letters),
    }
    for component, topics in expected.items():
        assert component_topics(settings, component) == topics
        grants = app_grants(settings, component)
        configs = {g.name for g in grants if g.operation is Operation.DESCRIBE_CONFIGS}
        assert configs == set(topics)
        assert all(g.resource is ResourceType.TOPIC for g in grants if g.name in configs)
