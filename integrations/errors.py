"""Errors raised at the boundary with external systems; the agent decides what they mean."""

from __future__ import annotations


class IntegrationError(Exception):
    """An external system failed or refused a request."""


class SourceUnavailable(IntegrationError):
    """The source could not be reached or answered 5xx after every retry; the data is missing, not anomalous."""


class QueryRejected(IntegrationError):
    """The source understood the request and refused it (bad PromQL, 4xx): retrying will not help."""
