"""Six Kafka admin requests aiokafka lacks, spoken over its own connections.

aiokafka's admin client creates topics but has no SCRAM API and only ACL versions that Kafka 4
no longer accepts (KIP-896 removed them). These are the flexible versions every Kafka since 2.8
serves; each struct ends in tagged fields, as the protocol's JSON schemas say. Running them
here costs one round trip, where a JVM tool would take one or two seconds per call, and the
SCRAM password never leaves this process: only its salted hash is sent.
"""

from typing import TypeAlias

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)

# (resource type, name, pattern type, principal, host, operation, permission)
AclRow: TypeAlias = tuple[int, str, int, str, str, int, int]
# (resource type, name or None, pattern type, principal or None, host or None, op, permission)
AclFilterRow: TypeAlias = tuple[int, str | None, int, str | None, str | None, int, int]

_STRING = CompactString("utf-8")
_TAGS = ("tags", TaggedFields)

_ACL_FIELDS = (
    ("resource_type", Int8),
    ("resource_name", _STRING),
    ("pattern_type", Int8),
    ("principal", _STRING),
    ("host", _STRING),
    ("operation", Int8),
    ("permission_type", Int8),
)


class CreateAclsResponse_v3(Response):
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("error_code", Int16), ("error_message", _STRING), _TAGS)),
        _TAGS,
    )


class CreateAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = CreateAclsResponse_v3
    SCHEMA = Schema(("creations", CompactArray(*_ACL_FIELDS, _TAGS)), _TAGS)


class CreateAcls(Request[CreateAclsRequest_v3]):
    """Create ACL bindings; one that exists already is accepted again, unchanged."""

    API_KEY = 30

    def __init__(self, rows: list[AclRow]) -> None:
        self._rows = rows

    def build(self, request_struct_class: type[CreateAclsRequest_v3]) -> CreateAclsRequest_v3:
        return request_struct_class([(*row, {}) for row in self._rows], {})


class DescribeAclsResponse_v3(Response):
    API_KEY = 29
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", _STRING),
        (
            "resources",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", _STRING),
                ("pattern_type", Int8),
                (
                    "acls",
                    CompactArray(
                        ("principal", _STRING),
                        ("host", _STRING),
                        ("operation", Int8),
                        ("permission_type", Int8),
                        _TAGS,
                    ),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class DescribeAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 29
    API_VERSION = 3
    RESPONSE_TYPE = DescribeAclsResponse_v3
    SCHEMA = Schema(*_ACL_FIELDS, _TAGS)


class DescribeAcls(Request[DescribeAclsRequest_v3]):
    """The ACL bindings that match one filter."""

    API_KEY = 29

    def __init__(self, row: AclFilterRow) -> None:
        self._row = row

    def build(self, request_struct_class: type[DescribeAclsRequest_v3]) -> DescribeAclsRequest_v3:
        return request_struct_class(*self._row, {})


class DeleteAclsResponse_v3(Response):
    API_KEY = 31
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "filter_results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", _STRING),
                (
                    "matching_acls",
                    CompactArray(
                        ("error_code", Int16), ("error_message", _STRING), *_ACL_FIELDS, _TAGS
                    ),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class DeleteAclsRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 31
    API_VERSION = 3
    RESPONSE_TYPE = DeleteAclsResponse_v3
    SCHEMA = Schema(("filters", CompactArray(*_ACL_FIELDS, _TAGS)), _TAGS)


class DeleteAcls(Request[DeleteAclsRequest_v3]):
    """Delete every ACL binding that matches any of the filters."""

    API_KEY = 31

    def __init__(self, filters: list[AclFilterRow]) -> None:
        self._filters = filters

    def build(self, request_struct_class: type[DeleteAclsRequest_v3]) -> DeleteAclsRequest_v3:
        return request_struct_class([(*row, {}) for row in self._filters], {})


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", _STRING), ("error_code", Int16), ("error_message", _STRING), _TAGS
            ),
        ),
        _TAGS,
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", _STRING), ("mechanism", Int8), _TAGS)),
        (
            "upsertions",
            CompactArray(
                ("name", _STRING),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                _TAGS,
            ),
        ),
        _TAGS,
    )


# (name, mechanism, iterations, salt, salted password)
Upsertion: TypeAlias = tuple[str, int, int, bytes, bytes]


class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):
    """Create, replace or delete SCRAM credentials; only salted hashes travel."""

    API_KEY = 51

    def __init__(self, deletions: list[tuple[str, int]], upsertions: list[Upsertion]) -> None:
        self._deletions = deletions
        self._upsertions = upsertions

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        return request_struct_class(
            [(*d, {}) for d in self._deletions], [(*u, {}) for u in self._upsertions], {}
        )


class DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", _STRING),
        (
            "results",
            CompactArray(
                ("user", _STRING),
                ("error_code", Int16),
                ("error_message", _STRING),
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), _TAGS),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = DescribeUserScramCredentialsResponse_v0
    # A null array asks for every user.
    SCHEMA = Schema(("users", CompactArray(("name", _STRING), _TAGS)), _TAGS)


class DescribeUserScramCredentials(Request[DescribeUserScramCredentialsRequest_v0]):
    """Which users have SCRAM credentials (names and mechanisms, never the hashes)."""

    API_KEY = 50

    def __init__(self, users: list[str] | None = None) -> None:
        self._users = users

    def build(
        self, request_struct_class: type[DescribeUserScramCredentialsRequest_v0]
    ) -> DescribeUserScramCredentialsRequest_v0:
        users: list[tuple[str, dict[int, bytes]]] | None = (
            None if self._users is None else [(u, {}) for u in self._users]
        )
        return request_struct_class(users, {})


# The metadata log every KRaft cluster keeps: its leader is the active controller.
METADATA_TOPIC = "__cluster_metadata"

_REPLICA_STATE = CompactArray(("replica_id", Int32), ("log_end_offset", Int64), _TAGS)


class DescribeQuorumResponse_v0(Response):
    API_KEY = 55
    API_VERSION = 0
    SCHEMA = Schema(
        ("error_code", Int16),
        (
            "topics",
            CompactArray(
                ("topic_name", _STRING),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("error_code", Int16),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("high_watermark", Int64),
                        ("current_voters", _REPLICA_STATE),
                        ("observers", _REPLICA_STATE),
                        _TAGS,
                    ),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class DescribeQuorumRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 55
    API_VERSION = 0
    RESPONSE_TYPE = DescribeQuorumResponse_v0
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_name", _STRING),
                ("partitions", CompactArray(("partition_index", Int32), _TAGS)),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class DescribeQuorum(Request[DescribeQuorumRequest_v0]):
    """The KRaft metadata quorum: its leader (the active controller), voters and observers.
    A broker passes it on to the controllers; it needs Describe on the cluster."""

    API_KEY = 55

    def build(
        self, request_struct_class: type[DescribeQuorumRequest_v0]
    ) -> DescribeQuorumRequest_v0:
        return request_struct_class([(METADATA_TOPIC, [(0, {})], {})], {})
