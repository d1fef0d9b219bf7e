"""Runbook parameters: placeholders are data, never code; values are checked against the catalog schema."""

from __future__ import annotations

from typing import Any

import pytest

from agent.config.models import ParamSpec, ParamValue
from agent.core.params import ParamError, coerce, placeholders, render

CONTEXT = {
    "service": "demo-web",
    "signal": "demo_latency_p99",
    "value": "0.42",
    "incident.id": "17",
    "incident.priority": "P2",
    "incident.service": "demo-web",
    "labels.instance": "10.0.0.7:8080",
    "labels.job": "demo",
}


def spec(**kw: Any) -> ParamSpec:
    return ParamSpec(**kw)


# ---------------------------------------------------------------- placeholders()


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("http://{labels.instance}/admin/{service}", ["labels.instance", "service"]),
        ("no placeholders at all", []),
        ("{incident.id}", ["incident.id"]),
        ("{{literal braces}}", []),
        (
            "{signal} {value} {incident.priority} {incident.service}",
            ["signal", "value", "incident.priority", "incident.service"],
        ),
    ],
)
def test_placeholders_lists_the_names(template: str, names: list[str]) -> None:
    assert placeholders(template) == names


@pytest.mark.parametrize(
    "template",
    ["{foo}", "{labels.}", "{labels.a-b}", "{labels[instance]}", "{service.__class__}", "{0}", "{}"],
)
def test_unknown_placeholders_are_refused(template: str) -> None:
    with pytest.raises(ParamError, match="unknown placeholder"):
        placeholders(template)


@pytest.mark.parametrize("template", ["{service!r}", "{service:>20}", "{labels.job!s}"])
def test_format_specs_and_conversions_are_refused(template: str) -> None:
    with pytest.raises(ParamError, match="must not have a format spec or conversion"):
        placeholders(template)


@pytest.mark.parametrize("template", ["{service", "service}", "{labels.job"])
def test_unbalanced_braces_are_refused(template: str) -> None:
    with pytest.raises(ParamError, match="bad placeholder syntax"):
        placeholders(template)


# ---------------------------------------------------------------- render()


def test_render_fills_placeholders() -> None:
    assert render("http://{labels.instance}/admin/recycle", CONTEXT) == "http://10.0.0.7:8080/admin/recycle"
    assert render("#{incident.id} {incident.priority} on {service}", CONTEXT) == "#17 P2 on demo-web"
    assert render("{{x}} stays", CONTEXT) == "{x} stays"


@pytest.mark.parametrize("value", [5, 2.5, True, False])
def test_render_passes_non_strings_through(value: ParamValue) -> None:
    assert render(value, CONTEXT) is value


def test_render_refuses_a_value_the_incident_lacks() -> None:
    with pytest.raises(ParamError, match=r"\{labels.pod\} is not available"):
        render("{labels.pod}", CONTEXT)


@pytest.mark.parametrize(
    "hostile",
    [
        "{service}",
        "{{ lookup('pipe', 'id') }}",
        "$(rm -rf /)",
        "`id`; echo pwned",
        "${HOME}",
        "%s%s%n",
        "a'; DROP TABLE incidents; --",
        "line\nbreak",
        "{0.__class__.__mro__}",
    ],
)
def test_hostile_label_values_are_rendered_verbatim(hostile: str) -> None:
    """A label value is text: it is inserted once, never parsed again or evaluated."""
    context = {**CONTEXT, "labels.instance": hostile}
    assert render("[{labels.instance}]", context) == f"[{hostile}]"
    assert render("{labels.instance}", context) == hostile


# ---------------------------------------------------------------- coerce()


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("integer", "17", 17),
        ("integer", 17, 17),
        ("integer", " 17 ", 17),
        ("number", "0.25", 0.25),
        ("number", 3, 3.0),
        ("boolean", "true", True),
        ("boolean", "False", False),
        ("boolean", True, True),
        ("string", 5, "5"),
        ("string", "text", "text"),
    ],
)
def test_coerce_converts_to_the_declared_type(type_: str, value: ParamValue, expected: ParamValue) -> None:
    out = coerce("p", value, spec(type=type_))
    assert out == expected
    assert type(out) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("integer", "4.2"),
        ("integer", "abc"),
        ("integer", True),
        ("integer", ""),
        ("number", "fast"),
        ("number", False),
        ("boolean", "yes"),
        ("boolean", 1),
        ("boolean", ""),
    ],
)
def test_coerce_refuses_values_of_the_wrong_type(type_: str, value: ParamValue) -> None:
    with pytest.raises(ParamError, match=f"parameter 'p' must be of type {type_}"):
        coerce("p", value, spec(type=type_))


def test_coerce_checks_the_whole_value_against_the_pattern() -> None:
    unit = spec(pattern=r"[A-Za-z0-9@._\-]+\.service")
    assert coerce("unit", "nginx.service", unit) == "nginx.service"
    for bad in ("nginx.service; reboot", "x nginx.service", "nginx.service\n", "../etc.service/x"):
        with pytest.raises(ParamError, match="does not match the catalog pattern"):
            coerce("unit", bad, unit)


def test_pattern_applies_to_the_rendered_label_value() -> None:
    url = spec(pattern=r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$")
    good = render("http://{labels.instance}/admin/recycle", CONTEXT)
    assert coerce("url", good, url) == good
    hostile = render("http://{labels.instance}/admin/recycle", {**CONTEXT, "labels.instance": "h/$(id)"})
    with pytest.raises(ParamError, match="does not match"):
        coerce("url", hostile, url)


def test_pattern_is_checked_after_type_conversion() -> None:
    small = spec(type="integer", pattern=r"[1-9]")
    assert coerce("n", "7", small) == 7
    with pytest.raises(ParamError, match="does not match"):
        coerce("n", "12", small)


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)
