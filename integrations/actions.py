"""Remediation actions by name: what a runbook catalog entry's `action` runs. Ansible (through
ansible-runner) is the one the agent ships; an action is any object with `run` like AnsibleRunner's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from integrations.ansible import AnsibleRunner, PlaybookRun, RunEvent, RunOutcome


class Action(Protocol):
    def run(
        self,
        spec: PlaybookRun,
        on_event: Callable[[RunEvent], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> RunOutcome: ...


ACTIONS: dict[str, Callable[[Path | None], Action]] = {"ansible": AnsibleRunner}
