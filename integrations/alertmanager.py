"""Alertmanager's webhook payload (version 4), validated, as plain alert records.

Alertmanager pushes groups of alerts; every alert is either firing or resolved and is identified by its
label set. Everything in a payload is untrusted input: sizes are bounded and the records are data only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_ALERTS = 1000  # Alertmanager's own default max_alerts per webhook is unlimited; we cap a request
Text = Annotated[str, StringConstraints(max_length=4096)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


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
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: Text = Field(default="", alias="generatorURL")

    @field_validator("labels")
    @classmethod
    def _named(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("every alert needs an alertname label")
        return labels

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone (RFC 3339)")
        return value.astimezone(UTC)


class WebhookPayload(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver; unknown fields are ignored, as versions add some."""

    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    status: Literal["firing", "resolved"] | None = None
    receiver: Text = ""
    alerts: list[_Alert] = Field(min_length=1, max_length=MAX_ALERTS)

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
