"""Runbook parameters filled from an incident: `{labels.instance}` style placeholders, data only.

This is deliberately not Jinja: a placeholder names one field and is replaced by its text, nothing is
evaluated. Values that come from monitoring stay untrusted all the way to Ansible (see integrations.ansible).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from agent.config.models import ParamSpec, ParamValue

_FIELDS = {"service", "signal", "value", "incident.id", "incident.priority", "incident.service"}
_LABEL = re.compile(r"^labels\.[A-Za-z_][A-Za-z0-9_]*$")


class ParamError(ValueError):
    """A parameter could not be filled or does not fit the runbook's schema."""


def placeholders(template: str) -> list[str]:
    """Names used in `template`; raises ParamError on syntax the renderer would not accept."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ParamError(
            f"bad placeholder syntax in {template!r}: {e} (write literal braces as {{{{ }}}})"
        ) from e
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise ParamError(f"placeholder {{{name}}} must not have a format spec or conversion")
        if name not in _FIELDS and not _LABEL.match(name):
            allowed = ", ".join(sorted(_FIELDS))
            raise ParamError(f"unknown placeholder {{{name}}} (use labels.<name> or one of: {allowed})")
        names.append(name)
    return names


def render(template: ParamValue, context: Mapping[str, str]) -> ParamValue:
    """Replace placeholders in a string with context values; non-strings pass through unchanged."""
    if not isinstance(template, str):
        return template
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            if name not in context:
                raise ParamError(f"{{{name}}} is not available for this incident")
            out.append(context[name])
    return "".join(out)


def coerce(name: str, value: ParamValue, spec: ParamSpec) -> ParamValue:
    """Check a rendered value against the catalog's schema, converting text to the declared type."""
    try:
        if spec.type == "integer":
            if isinstance(value, bool):
                raise ValueError
            value = int(value)
        elif spec.type == "number":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        elif spec.type == "boolean":
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError
                value = value.lower() == "true"
            elif not isinstance(value, bool):
                raise ValueError
        else:
            value = str(value)
    except ValueError:
        raise ParamError(f"parameter {name!r} must be of type {spec.type}, got {value!r}") from None
    if spec.pattern is not None and not re.fullmatch(spec.pattern, str(value)):
        raise ParamError(f"parameter {name!r} does not match the catalog pattern {spec.pattern!r}")
    return value
