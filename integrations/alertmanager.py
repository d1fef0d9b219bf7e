"""Alertmanager's webhook payload (version 4), validated, as plain alert records.

Alertmanager pushes groups of alerts; every alert is either firing or resolved and is identified by its
label set. Everything in a payload is untrusted input: sizes are bounded and the records are data only.
Timestamps must be RFC 3339 strings; with `Limits` as validation context, a payload may hold at most
`max_alerts` alerts and no timestamp further ahead of `now` than `max_clock_skew`, so a sender's broken
clock cannot open an incident in the far future that absorbs every later signal of its service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

Text = Annotated[str, StringConstraints(max_length=4096)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    """Only RFC 3339 text: pydantic alone would read a number (or a numeric string) as Unix time."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"must be an RFC 3339 timestamp such as 2026-03-01T12:00:00Z, got {value!r:.60}")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


@dataclass(frozen=True)
class Limits:
    """What one webhook request may hold, judged against the receiver's clock."""

    now: datetime
    max_alerts: int
    max_clock_skew: timedelta


@dataclass(frozen=True)
class ExternalAlert:
    """One alert as Alertmanager sent it: `name` is its `alertname` label."""

    name: str
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str


class _Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[LabelName, Text] = Field(max_length=128)
    annotations: dict[LabelName, Text] = Field(default_factory=dict, max_length=128)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Timestamp | None = Field(default=None, alias="endsAt")
    generator_url: Text = Field(default="", alias="generatorURL")

    @field_validator("labels")
    @classmethod
    def _named(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("every alert needs an alertname label")
        return labels

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the years 1 to 9999 once in UTC") from None
        limits = info.context
        if isinstance(limits, Limits) and value > limits.now + limits.max_clock_skew:
            raise ValueError(
                f"{value.isoformat()} is more than the allowed clock skew "
                f"({limits.max_clock_skew.total_seconds():g}s) ahead of the receiver's {limits.now.isoformat()}"
            )
        return value


class WebhookPayload(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver; unknown fields are ignored, as versions add some."""

    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    status: Literal["firing", "resolved"] | None = None
    receiver: Text = ""
    alerts: list[_Alert] = Field(min_length=1)

    @field_validator("alerts", mode="before")
    @classmethod
    def _few_enough(cls, alerts: Any, info: ValidationInfo) -> Any:
        limits = info.context
        if isinstance(limits, Limits) and isinstance(alerts, list) and len(alerts) > limits.max_alerts:
            raise ValueError(
                f"holds {len(alerts)} alerts, more than the {limits.max_alerts} one request may carry "
                "(set max_alerts in Alertmanager's webhook_config)"
            )
        return alerts

    def records(self) -> list[ExternalAlert]:
        return [
            ExternalAlert(
                name=a.labels["alertname"],
                status=a.status,
                labels=dict(a.labels),
                annotations=dict(a.annotations),
                starts_at=a.starts_at,
                # Alertmanager sends 0001-01-01T00:00:00Z as "no end" for firing alerts
                ends_at=a.ends_at if a.ends_at is not None and a.ends_at.year > 1 else None,
                generator_url=a.generator_url,
            )
            for a in self.alerts
        ]
