"""Known errors at work: a new incident whose signature a known error lists is linked to it when it opens,
its timeline and notifications carry the workaround, and a rule naming `known_error_workaround` runs the
known error's own workaround runbook.

Log incidents are narrowed to their template: every new log template of a service shares one signature
(`web:log_new_template`), so a known error recorded from such incidents lists the signature with each
template it saw (`web:log_new_template#17`) and matches only incidents of those templates; a workaround
for one kind of log line must not be offered, or run, for another.

The core learns known errors from the store when it starts (the working set) and on the leader's
housekeeping ticks (people record them with the CLI or API); it never reads the store itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from agent.core.domain import Actor
from agent.core.incidents import Entry, IncidentState

WORKAROUND_RUNBOOK = "known_error_workaround"
"""The runbook name a rule gives to run the workaround runbook of the incident's known error."""
TEMPLATE_LABEL = "template_id"  # the label log signals carry their template in


def narrowed(signature: str, labels: Mapping[str, str]) -> str | None:
    """The signature narrowed to the log template a signal's labels name, or None for other signals."""
    template = labels.get(TEMPLATE_LABEL)
    return f"{signature}#{template}" if template else None


def match_keys(inc: IncidentState) -> list[str]:
    """What a known error may list to match `inc`: its signature narrowed to each log template of its
    own signals (most specific first), then the signature itself."""
    keys = [
        key
        for state in inc.signals.values()
        if f"{state.service}:{state.name}" == inc.signature
        and (key := narrowed(inc.signature, state.labels)) is not None
    ]
    return [*dict.fromkeys(keys), inc.signature]


@dataclass(frozen=True)
class KnownError:
    """What the core needs of a known error: what it matches and what to do about it."""

    id: int
    signatures: tuple[str, ...]
    title: str
    workaround: str
    workaround_runbook: str = ""


class KnownErrors:
    """Known errors by signature (one lookup per opening). A signature two known errors list matches the
    newer (higher id) one: it was recorded with more knowledge.

    >>> ke = KnownErrors([KnownError(4, ("web:HighLatency", "web:log_new_template#7"), "pool", "recycle")])
    >>> ke.matching(["web:HighLatency"]).id, ke.matching(["db:Down"])
    (4, None)
    >>> ke.matching(["web:log_new_template#7", "web:log_new_template"]).id
    4
    >>> ke.matching(["web:log_new_template#8", "web:log_new_template"]) is None  # another template
    True
    """

    def __init__(self, known: Iterable[KnownError] = ()):
        self._by_id: dict[int, KnownError] = {}
        self._by_signature: dict[str, KnownError] = {}
        self.update(known)

    def update(self, known: Iterable[KnownError]) -> bool:
        """Replace what is known; True when it differs from before."""
        by_id = {k.id: k for k in known}
        if by_id == self._by_id:
            return False
        self._by_id = by_id
        self._by_signature = {}
        for k in sorted(by_id.values(), key=lambda k: k.id):
            for signature in k.signatures:
                self._by_signature[signature] = k
        return True

    def matching(self, keys: Iterable[str]) -> KnownError | None:
        """The known error listing the first of `keys` that one lists (see `match_keys`)."""
        return next((k for key in keys if (k := self._by_signature.get(key)) is not None), None)

    def get(self, known_error_id: int | None) -> KnownError | None:
        return self._by_id.get(known_error_id) if known_error_id is not None else None

    def link(self, inc: IncidentState, at: datetime) -> Entry | None:
        """Link a newly opened incident to the known error its signature matches: the timeline entry
        that says so, with the workaround, or None when no known error matches."""
        known = self.matching(match_keys(inc))
        if known is None:
            return None
        inc.known_error_id = known.id
        runbook = f"; workaround runbook {known.workaround_runbook}" if known.workaround_runbook else ""
        text = f"matches known error #{known.id} ({known.title}): workaround: {known.workaround}{runbook}"
        data = {"known_error_id": known.id, "workaround_runbook": known.workaround_runbook}
        return Entry(inc, at, "known_error", Actor.AGENT.value, text, data)
