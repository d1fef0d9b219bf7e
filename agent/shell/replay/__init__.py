"""`aiops replay`: what the agent would have done over a past window (SPEC "Replay").

History from Prometheus and file log sources goes through the same core, runtime and store code as
`aiops run`, on a simulated clock and a throwaway store; nothing runs and the live store is never
written. With a second rule set it replays twice and reports where their plans differ.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.shell.replay.envelope import EnvelopeLog
from agent.shell.replay.history import History
from agent.shell.replay.report import document, shadow
from agent.shell.replay.run import Progress, Replay
from integrations.prometheus import PrometheusClient


def replay(
    config: Config,
    client: PrometheusClient,
    since: float,
    until: float,
    candidate: Config | None = None,
    progress: Progress | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Replay [since, until] with `config`'s rules (and again with `candidate`'s, when given: the
    document then describes the candidate and its `shadow` the differences). `keep`: a directory that
    receives each replay's store, for `aiops incidents list --store sqlite:///...`."""
    recorded = EnvelopeLog.read(config.agent.store.url, _dt(since), _dt(until))
    history = History(config, client, since, until, recorded.tick)
    runs = [("baseline", config)] + ([("candidate", candidate)] if candidate is not None else [])
    docs = []
    for name, cfg in runs:
        with tempfile.TemporaryDirectory(prefix=f"aiops-replay-{name}-") as tmp:
            workdir = keep / name if keep is not None else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            replayed = Replay(cfg, client, history, workdir).run(progress)
            try:
                docs.append(document(replayed, since, until, history.stats))
            finally:
                replayed.store.close()
    doc = docs[-1]
    doc["totals"]["silences_applied"] = len(recorded.silences)
    doc["totals"]["switches_applied"] = len(recorded.switches)
    doc["totals"]["known_errors_applied"] = len(recorded.known_errors)
    if recorded.note:
        doc["notes"] = [*doc.get("notes", []), recorded.note]
    if candidate is not None:
        doc["shadow"] = shadow(docs[0], docs[1])
    return doc


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


__all__ = ["replay"]
