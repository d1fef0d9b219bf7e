"""Slack's incoming webhooks: one short, readable message per notification (`text` for the phone's
notification, `blocks` for the channel).

Titles, reasons and label values come from monitoring data and are untrusted: `&`, `<` and `>` are
escaped everywhere they appear, so no value can mention `<!channel>`, link elsewhere or break the
message's own link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.notify.base import HttpSink

HEADLINES = {
    "incident_opened": (":warning:", "opened"),
    "incident_reopened": (":repeat:", "reopened"),
    "escalation": (":rotating_light:", "escalated"),
    "sla_breach": (":alarm_clock:", "missed an SLA target"),
    "sla_warning": (":hourglass_flowing_sand:", "is close to an SLA target"),
    "incident_acknowledged": (":eyes:", "acknowledged"),
    "incident_resolved": (":white_check_mark:", "resolved"),
}
TEXT_MAX = 2900  # Slack takes 3000 characters in a section's text
SIGNALS_SHOWN = 5


def escape(text: object) -> str:
    """`text` safe inside Slack mrkdwn: its three control characters as entities.

    >>> escape("<!channel> & <http://x|y>")
    '&lt;!channel&gt; &amp; &lt;http://x|y&gt;'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_message(doc: Mapping[str, Any], link: str = "") -> dict[str, Any]:
    """The incoming-webhook body for one notification (`link`: its incident or change in the UI)."""
    if doc.get("event") == "remediation":
        return _change_message(doc, link)
    emoji, what = HEADLINES.get(str(doc.get("event")), (":information_source:", escape(doc.get("event"))))
    number = f"#{doc['incident_id']}"
    ref = f"<{escape(link)}|{number}>" if link else number
    priority, title = escape(doc["priority"]), escape(doc["title"])
    blocks: list[dict[str, Any]] = [
        _section(f"{emoji} *[{priority}] Incident {ref} {what}*\n{title}"),
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Service*\n{escape(doc['service'])}"),
                _mrkdwn(f"*Status*\n{escape(doc['status'])}"),
            ],
        },
    ]
    if doc.get("reason"):
        blocks.append(_section(f"*Why*\n{escape(doc['reason'])}"))
    known = doc.get("known_error")
    if known:
        runbook = (
            f" (runbook `{escape(known['workaround_runbook'])}`)" if known.get("workaround_runbook") else ""
        )
        blocks.append(
            _section(f"*Known error #{known['id']}: workaround*\n{escape(known['workaround'])}{runbook}")
        )
    signals = list(doc.get("signals") or [])
    if signals:
        lines = [_signal_line(s) for s in signals[:SIGNALS_SHOWN]]
        if len(signals) > SIGNALS_SHOWN:
            lines.append(f"and {len(signals) - SIGNALS_SHOWN} more")
        blocks.append({"type": "context", "elements": [_mrkdwn("\n".join(lines))]})
    return {"text": f"{emoji} [{priority}] Incident {number} {what}: {title}"[:TEXT_MAX], "blocks": blocks}


def _change_message(doc: Mapping[str, Any], link: str) -> dict[str, Any]:
    change, incident = doc["change_id"], doc["incident_id"]
    ref = f"<{escape(link)}|#{change}>" if link else f"#{change}"
    text = (
        f":hourglass_flowing_sand: Change {ref} for incident #{incident} awaits approval: "
        f"runbook {escape(doc['runbook'])} on {escape(doc['service'])}"
    )
    approve = _mrkdwn(f"`aiops changes approve {change}` or `aiops changes reject {change}`")
    return {"text": text[:TEXT_MAX], "blocks": [_section(text), {"type": "context", "elements": [approve]}]}


def _signal_line(s: Mapping[str, Any]) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(dict(s.get("labels") or {}).items()))
    line = f"{s['name']}{{{labels}}} = {_number(s.get('value'))}"
    if s.get("expected") is not None:
        line += f" (expected {_number(s['expected'])})"
    return escape(line)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text[:TEXT_MAX]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


class SlackSink(HttpSink):
    """Posts to a Slack incoming webhook (its URL is the credential, never shown)."""

    kind = "slack"

    def send(self, payload: Mapping[str, Any]) -> None:
        if payload.get("event") == "remediation":
            link = self.settings.link("changes", payload["change_id"])
        else:
            link = self.settings.link("incidents", payload["incident_id"])
        self.post(to_message(payload, link))
