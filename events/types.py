"""Named aliases shared by the contract."""

from typing import Annotated, Literal

from pydantic import StringConstraints

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Role = Literal["admin", "contributor", "inspector", "viewer"]
Kind = Literal["recommendation", "area_for_development"]
DeliveryStatus = Literal["on_track", "delayed"]
DelayReason = Literal["legislation", "system", "resourcing", "dependency", "other"]
Decision = Literal["closed", "kept_open", "more_evidence_requested", "superseded"]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
