"""Kafka principals and their ACLs: the app's components, teams and subscribers.

Every principal is a SCRAM user with a generated password. The app's own principals (one per
component, named like its consumer group) keep theirs in 0600 files under RECTRACK_HOME; a
team's or subscriber's is handed back once by `create_principal` and stored nowhere but in the
broker, as a salted hash. ACLs say what each may do, and nothing else is allowed: the broker
runs with `allow.everyone.if.no.acl.found=false`.

Admin work goes through the admin client of `infra.kafka_clients` with the requests of
`infra.kafka_wire` (aiokafka has no SCRAM or current ACL API), as the settings' principal:
this home's admin by default.
"""

import hashlib
import os
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code

from infra.kafka_clients import admin_client, ensure_topics, read_kafka_password
from infra.kafka_wire import (
    AclFilterRow,
    AclRow,
    AlterUserScramCredentials,
    CreateAcls,
    DeleteAcls,
    DescribeAcls,
    DescribeUserScramCredentials,
    Upsertion,
)
from infra.private_files import ensure_password, new_password
from infra.settings import KAFKA_ADMIN_PRINCIPAL, KAFKA_BROKER_PRINCIPAL, Settings

log = structlog.get_logger(__name__)

APP_COMPONENTS = ("decider", "projector", "api")
# Kafka accepts 4096 to 16384 iterations; the client pays them once per connection.
SCRAM_ITERATIONS = 8192
# Lowercase slugs: no '.', so a principal's consumer group prefix `NAME.` is never the start of
# another principal's; `rectrack-` is kept for the app's own principals.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
RESERVED_PREFIX = "rectrack"


class ResourceType(IntEnum):
    """Kafka's resource type codes (ACL requests)."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    """Kafka's resource pattern type codes."""

    ANY = 1
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's ACL operation codes (only those rectrack grants, and ANY for filters)."""

    ANY = 1
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10


ALLOW = 3
ANY_PERMISSION = 1
SCRAM_MECHANISM_CODES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class PrincipalKind(StrEnum):
    """What an outside principal is for."""

    team = "team"  # writes commands, reads outcomes
    subscriber = "subscriber"  # reads events


class KafkaAdminError(RuntimeError):
    """The broker refused an admin request; the message names the request and the reason."""


@dataclass(frozen=True)
class Grant:
    """One ALLOW binding for one principal: an operation on a resource pattern."""

    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def row(self, principal: str) -> AclRow:
        """The binding as the CreateAcls request carries it (any host)."""
        return (
            self.resource,
            self.name,
            self.pattern,
            f"User:{principal}",
            "*",
            self.operation,
            ALLOW,
        )


def _topic(name: str, *operations: Operation) -> list[Grant]:
    return [Grant(ResourceType.TOPIC, name, PatternType.LITERAL, op) for op in operations]


def _faust_app(settings: Settings, component: str) -> list[Grant]:
    """What a Faust app needs for its consumer group and the one topic it creates itself.

    Found against the broker's denials: Faust asks to create its leader topic at every start
    (and CreateTopics is authorised before the broker looks whether the topic exists), then
    consumes it; it never writes to it, nor needs IdempotentWrite or DescribeConfigs.
    """
    group = settings.component_principal(component)  # the app id is the group id
    return [
        Grant(ResourceType.GROUP, group, PatternType.LITERAL, Operation.READ),
        *_topic(f"{group}-__assignor-__leader", Operation.CREATE, Operation.READ),
    ]


def app_grants(settings: Settings, component: str) -> list[Grant]:
    """Least privilege for each component, topics named exactly (LITERAL).

    The decider alone writes events, outcomes and dead letters; the API (and the gateway of
    `rectrack load`) only writes commands, so a compromised API cannot forge an event. Each
    reads the configs of the topics it uses (DC: DescribeConfigs) to check their replication and
    retention before it starts; the API also reports them.
    """
    t = settings.topics
    R, W, D = Operation.READ, Operation.WRITE, Operation.DESCRIBE
    DC = Operation.DESCRIBE_CONFIGS
    if component == "decider":
        return [
            *_topic(t.commands, R, DC),
            *_topic(t.events, R, W, DC),
            *_topic(t.outcomes, R, W, DC),
            *_topic(t.dead_letters, W, DC),
            *_faust_app(settings, component),
        ]
    if component == "projector":
        return [*_topic(t.events, R, DC), *_faust_app(settings, component)]
    if component == "api":
        # Feed and lag read events; the gateway follows outcomes; metrics need the dead
        # letters' end offsets (Describe), not their content.
        return [
            *_topic(t.commands, W, DC),
            *_topic(t.outcomes, R, DC),
            *_topic(t.events, R, DC),
            *_topic(t.dead_letters, D, DC),
        ]
    raise ValueError(f"no such component: {component!r}")


def component_topics(settings: Settings, component: str) -> tuple[str, ...]:
    """The instance's topics a component uses (those it is granted anything on)."""
    granted = {g.name for g in app_grants(settings, component)}
    return tuple(name for name in settings.topics.all() if name in granted)


def group_prefix(name: str) -> str:
    """The consumer group ids an outside principal may use start with this."""
    return f"{name}."


def outside_grants(settings: Settings, name: str, kind: PrincipalKind) -> list[Grant]:
    """A team writes commands and reads outcomes; a subscriber reads events. Each uses consumer
    groups named `NAME.…` only, so it can neither join nor move another's offsets."""
    t = settings.topics
    group = Grant(ResourceType.GROUP, group_prefix(name), PatternType.PREFIXED, Operation.READ)
    if kind is PrincipalKind.team:
        return [*_topic(t.commands, Operation.WRITE), *_topic(t.outcomes, Operation.READ), group]
    return [*_topic(t.events, Operation.READ), group]


@dataclass(frozen=True)
class KafkaCredentials:
    """What a principal needs to connect. The password is shown once and never in a repr."""

    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str = field(repr=False)
    ssl_cafile: str | None = None

    def client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments (producer, consumer, admin) for these credentials."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        if self.security_protocol.endswith("SSL"):
            options["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        return options

    def as_dict(self) -> dict[str, str]:
        """The fields of a credentials file (`ssl_cafile` only when TLS is on)."""
        found: dict[str, str] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "username": self.username,
            "password": self.password,
        }
        if self.ssl_cafile is not None:
            found["ssl_cafile"] = self.ssl_cafile
        return found


@dataclass(frozen=True)
class PrincipalInfo:
    """A SCRAM user of the cluster and what it is to this instance."""

    name: str
    kind: str  # admin, broker, decider, projector, api, team, subscriber
    mechanisms: tuple[str, ...]


def scram_upsertion(name: str, password: str, mechanism: str) -> Upsertion:
    """The salted password (RFC 5802 Hi) the broker stores; the password itself never leaves."""
    salt = os.urandom(32)
    salted = hashlib.pbkdf2_hmac(_HASHES[mechanism], password.encode(), salt, SCRAM_ITERATIONS)
    return (name, SCRAM_MECHANISM_CODES[mechanism], SCRAM_ITERATIONS, salt, salted)


def check_name(name: str) -> None:
    """Refuse a principal name that is not a short slug, or that the app keeps for itself."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"a principal name is 1-63 lowercase letters, digits and hyphens, starting with a "
            f"letter or digit; got {name!r}"
        )
    if name.startswith(RESERVED_PREFIX):
        raise ValueError(f"names starting with {RESERVED_PREFIX!r} are the app's own: {name!r}")


def _raise_errors(request: str, results: Iterable[tuple[int, str | None]]) -> None:
    for code, message in results:
        if code:
            reason = for_code(code).__name__
            raise KafkaAdminError(
                f"{request} refused: {reason}{f' ({message})' if message else ''}"
            )


async def send(admin: AIOKafkaAdminClient, request: Any) -> Any:
    """Send one of `infra.kafka_wire`'s requests on a started admin client's connection."""
    return await admin._client.send(admin._client.get_random_node(), request)


async def scram_users(admin: AIOKafkaAdminClient) -> dict[str, tuple[str, ...]]:
    """Every SCRAM user and its mechanisms."""
    response = await send(admin, DescribeUserScramCredentials())
    _raise_errors("DescribeUserScramCredentials", [(response.error_code, response.error_message)])
    names = {code: name for name, code in SCRAM_MECHANISM_CODES.items()}
    return {
        user: tuple(names.get(m, str(m)) for m, _iterations, _tags in infos)
        for user, _code, _message, infos, _tags in response.results
    }


async def upsert_scram(
    admin: AIOKafkaAdminClient,
    upsertions: Sequence[Upsertion],
    deletions: Sequence[tuple[str, int]] = (),
) -> None:
    """Create or replace SCRAM credentials (and delete others) in one request."""
    if not upsertions and not deletions:
        return
    response = await send(admin, AlterUserScramCredentials(list(deletions), list(upsertions)))
    _raise_errors(
        "AlterUserScramCredentials",
        [
            (code, f"{user}: {message}" if message else user)
            for user, code, message, _ in response.results
        ],
    )


async def grant(admin: AIOKafkaAdminClient, bindings: Iterable[tuple[str, Grant]]) -> None:
    """Create (principal, grant) ACL bindings in one request; existing ones stay as they are."""
    response = await send(admin, CreateAcls([g.row(principal) for principal, g in bindings]))
    _raise_errors("CreateAcls", [(code, message) for code, message, _ in response.results])


async def acls_of(admin: AIOKafkaAdminClient, principal: str | None = None) -> list[AclRow]:
    """Every ACL binding (of one principal, if named)."""
    wanted: AclFilterRow = (
        ResourceType.ANY,
        None,
        PatternType.ANY,
        None if principal is None else f"User:{principal}",
        None,
        Operation.ANY,
        ANY_PERMISSION,
    )
    response = await send(admin, DescribeAcls(wanted))
    _raise_errors("DescribeAcls", [(response.error_code, response.error_message)])
    return [
        (rtype, rname, pattern, who, host, op, permission)
        for rtype, rname, pattern, acls, _ in response.resources
        for who, host, op, permission, _ in acls
    ]


async def ensure_app_principals(
    settings: Settings, components: Sequence[str] = APP_COMPONENTS
) -> None:
    """The components' principals and ACLs for this instance, as the settings' (admin)
    principal; idempotent. A password file is generated once; the broker's credential is set
    when it has none or the file is new, so running processes keep authenticating."""
    if not settings.kafka_sasl:
        return
    mechanism = settings.kafka_sasl_mechanism
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = await scram_users(admin)
        upsertions = []
        for component in components:
            name = settings.component_principal(component)
            path = settings.kafka_password_path_of(name)
            fresh = not path.exists()
            password = ensure_password(path)
            if fresh or mechanism not in existing.get(name, ()):
                upsertions.append(scram_upsertion(name, password, mechanism))
        await upsert_scram(admin, upsertions)
        await grant(
            admin,
            (
                (settings.component_principal(c), g)
                for c in components
                for g in app_grants(settings, c)
            ),
        )
    except KafkaAdminError as exc:
        raise KafkaAdminError(
            f"{exc}. The components' Kafka principals are made by {settings.kafka_principal}, "
            "which must be allowed to manage SCRAM users and ACLs (Alter on the cluster); or "
            "make them yourself and start each component with RECTRACK_KAFKA_USERNAME and "
            "RECTRACK_KAFKA_PASSWORD_FILE"
        ) from None
    finally:
        await admin.close()


async def prepare_kafka(
    settings: Settings, components: Sequence[str] = APP_COMPONENTS
) -> list[str]:
    """Topics and the components' principals of this instance; returns the topics created."""
    created = await ensure_topics(settings)
    await ensure_app_principals(settings, components)
    return created


def credentials_for(settings: Settings, name: str, password: str) -> KafkaCredentials:
    """How `name` connects to this instance's cluster."""
    ca = settings.kafka_ca_path
    return KafkaCredentials(
        bootstrap_servers=settings.bootstrap_servers,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=name,
        password=password,
        ssl_cafile=None if ca is None else str(ca),
    )


def component_credentials(settings: Settings, component: str) -> KafkaCredentials:
    """A component's credentials, read from its 0600 file (for tests and tools)."""
    name = settings.component_principal(component)
    return credentials_for(
        settings, name, read_kafka_password(settings.kafka_password_path_of(name))
    )


async def create_principal(settings: Settings, name: str, kind: PrincipalKind) -> KafkaCredentials:
    """A new team or subscriber principal with a generated password and its ACLs.

    The password is in the returned credentials only: hand them over once (a 0600 file); the
    broker keeps a salted hash. A name that exists already (this instance's or another's on a
    shared cluster) is refused: creating it again would hand its rights to someone new.
    """
    check_name(name)
    if not settings.kafka_sasl:
        raise KafkaAdminError(
            f"principals need SASL; this instance connects with {settings.kafka_security_protocol}"
        )
    password = new_password()
    admin = admin_client(settings)
    await admin.start()
    try:
        if name in await scram_users(admin):
            raise KafkaAdminError(f"a Kafka principal named {name!r} exists already")
        await upsert_scram(admin, [scram_upsertion(name, password, settings.kafka_sasl_mechanism)])
        await grant(admin, ((name, g) for g in outside_grants(settings, name, kind)))
    finally:
        await admin.close()
    log.info("kafka_principal_created", principal=name, kind=kind.value)
    return credentials_for(settings, name, password)


async def revoke_principal(settings: Settings, name: str) -> bool:
    """Delete a team's or subscriber's credentials and every ACL naming it; True if it existed.

    Its ACLs go too, so a connection it already has open is refused from its next request on.
    """
    check_name(name)
    admin = admin_client(settings)
    await admin.start()
    try:
        mechanisms = (await scram_users(admin)).get(name, ())
        await upsert_scram(
            admin,
            [],
            [(name, SCRAM_MECHANISM_CODES[m]) for m in mechanisms if m in SCRAM_MECHANISM_CODES],
        )
        everything: AclFilterRow = (
            ResourceType.ANY,
            None,
            PatternType.ANY,
            f"User:{name}",
            None,
            Operation.ANY,
            ANY_PERMISSION,
        )
        response = await send(admin, DeleteAcls([everything]))
        _raise_errors(
            "DeleteAcls", [(code, message) for code, message, _, _ in response.filter_results]
        )
        removed = sum(len(matching) for _, _, matching, _ in response.filter_results)
    finally:
        await admin.close()
    log.info("kafka_principal_revoked", principal=name)
    return bool(mechanisms) or removed > 0


def _kind(settings: Settings, name: str, acls: list[AclRow]) -> str | None:
    if name in (KAFKA_ADMIN_PRINCIPAL, KAFKA_BROKER_PRINCIPAL):
        return name.removeprefix("rectrack-")
    for component in APP_COMPONENTS:
        if name == settings.component_principal(component):
            return component
    t = settings.topics
    granted = {
        (rname, op)
        for _rtype, rname, _pattern, _who, _host, op, permission in acls
        if permission == ALLOW
    }
    if (t.commands, Operation.WRITE) in granted:
        return PrincipalKind.team.value
    if (t.events, Operation.READ) in granted:
        return PrincipalKind.subscriber.value
    return None  # a user of another instance on a shared cluster


async def list_principals(settings: Settings) -> list[PrincipalInfo]:
    """The SCRAM users that matter to this instance: its admin, broker, components, teams
    and subscribers (users of other instances on a shared cluster are left out)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        users = await scram_users(admin)
        acls = await acls_of(admin)
    finally:
        await admin.close()
    found = []
    for name, mechanisms in sorted(users.items()):
        mine = [row for row in acls if row[3] == f"User:{name}"]
        kind = _kind(settings, name, mine)
        if kind is not None:
            found.append(PrincipalInfo(name, kind, mechanisms))
    return found
