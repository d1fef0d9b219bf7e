"""The one redaction helper: URLs shown without their credentials, known secrets masked in text, JSON
values and every log record."""

from __future__ import annotations

import logging

import pytest

from integrations.redaction import MASK, Redactor, redact_url, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg2://aiops:s3cr3t@db.example:5432/aiops",
            "postgresql+psycopg2://aiops:***@db.example:5432/aiops",
        ),
        ("postgresql://aiops:p@ss:w@rd@db/aiops", "postgresql://aiops:***@db/aiops"),
        ("sqlite:///var/lib/aiops/aiops.db", "sqlite:///var/lib/aiops/aiops.db"),
        ("http://prom:9090", "http://prom:9090"),
        ("https://reader:hunter22@prom.example/api", "https://reader:***@prom.example/api"),
        (
            "http://loki:3100/x?access_token=abc123&query=up&X-Amz-Signature=ffff",
            "http://loki:3100/x?access_token=***&query=up&X-Amz-Signature=***",
        ),
        ("http://user@host/", "http://user@host/"),  # no password: nothing to hide
        ("not a url at all", "not a url at all"),
        ("http://[::1/", "http://[::1/"),  # unparseable: shown as given, never an exception
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_webhook_url_is_shown_as_scheme_host_and_port_only() -> None:
    url = "https://user:pw@hooks.example.com:8443/services/T0/B0/XyZsecret?token=t0ken"
    assert redact_url(url, path=False) == "https://hooks.example.com:8443/…"


def test_url_secrets_are_the_password_and_credential_parameters() -> None:
    assert url_secrets("https://u:pa55word@h/p?token=t0k3n&q=up") == ["pa55word", "t0k3n"]
    assert url_secrets("sqlite:///aiops.db") == []


def test_the_redactor_masks_known_secrets_in_text_and_values() -> None:
    r = Redactor(["Sup3rS3cret", "Sup3rS3cret-and-more", "abc"])  # "abc" is too short to mask safely
    assert r.text("x Sup3rS3cret-and-more y Sup3rS3cret z abc") == f"x {MASK} y {MASK} z abc"
    assert r.text("url-encoded: a%2Fb") == "url-encoded: a%2Fb"
    assert Redactor(["p/w+q=secret"]).text("?pw=p%2Fw%2Bq%3Dsecret") == f"?pw={MASK}"
    value = {"Sup3rS3cret": ["ok", "has Sup3rS3cret"], "n": 1, "t": ("Sup3rS3cret",), "none": None}
    assert r.value(value) == {MASK: ["ok", f"has {MASK}"], "n": 1, "t": [MASK], "none": None}
    assert Redactor().text("Sup3rS3cret") == "Sup3rS3cret"


def test_installed_on_the_log_handlers_it_masks_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.redaction")
    Redactor(["T0kenValue99"]).install(logging.getLogger())
    Redactor(["T0kenValue99", "Other-Secret-1"]).install(logging.getLogger())  # replaces, never stacks
    with caplog.at_level(logging.INFO):
        log.info("connecting with %s", "T0kenValue99")
        try:
            raise RuntimeError("refused: Other-Secret-1")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text
    assert "T0kenValue99" not in text and "Other-Secret-1" not in text
    assert f"connecting with {MASK}" in text and f"RuntimeError: refused: {MASK}" in text
    handler = caplog.handler
    assert sum(type(f).__name__ == "_LogFilter" for f in handler.filters) == 1
