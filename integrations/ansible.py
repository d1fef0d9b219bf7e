"""Run Ansible playbooks through ansible-runner, treating every parameter as untrusted data.

Parameters reach the playbook as extra vars tagged `!unsafe`: Ansible never templates them, so a
label value like `{{ lookup('pipe', 'id') }}` stays text. Playbooks must still `| quote` anything they
hand to a shell. Each run gets a fresh private data dir (mode 0700), deleted afterwards, so no run
re-reads another's vars and no parameter outlives the run on disk.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from integrations.proctree import kill_descendants

log = logging.getLogger(__name__)

ParamValue = str | int | float | bool

_KEEP_EVENTS = {
    "playbook_on_play_start",
    "playbook_on_task_start",
    "runner_on_ok",
    "runner_on_failed",
    "runner_on_unreachable",
    "runner_on_skipped",
    "runner_item_on_failed",
    "playbook_on_stats",
    "error",
    "verbose",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCAL_INVENTORY = {
    "all": {
        "hosts": {
            "localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            }
        }
    }
}


@dataclass(frozen=True)
class PlaybookRun:
    """What to run: a playbook, its (untrusted) parameters, a time limit, and optionally an inventory."""

    playbook: Path
    params: Mapping[str, ParamValue]
    timeout: float
    inventory: Path | None = None
    secret_params: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunEvent:
    """One Ansible event worth keeping: a task starting, a host result, the recap."""

    seq: int
    kind: str
    task: str
    host: str
    failed: bool
    changed: bool
    stdout: str
    at: float


@dataclass
class RunOutcome:
    status: str  # successful | failed | timeout | canceled
    rc: int
    started: float
    finished: float
    stdout: str = ""
    failed_tasks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


class _UnsafeText(str):
    pass


class _VarsDumper(yaml.SafeDumper):
    pass


_VarsDumper.add_representer(
    _UnsafeText, lambda dumper, data: dumper.represent_scalar("!unsafe", str(data), style='"')
)


def render_extravars(params: Mapping[str, ParamValue]) -> str:
    """YAML for `-e @file`: every string tagged `!unsafe`, so Ansible treats it as inert text."""
    marked = {k: _UnsafeText(v) if isinstance(v, str) else v for k, v in params.items()}
    return yaml.dump(marked, Dumper=_VarsDumper, default_flow_style=False, allow_unicode=True, width=1 << 20)


class AnsibleRunner:
    """Runs one playbook at a time per call; safe to call from several worker threads at once."""

    def __init__(self, work_root: Path | None = None):
        self.work_root = work_root

    def run(
        self,
        spec: PlaybookRun,
        on_event: Callable[[RunEvent], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> RunOutcome:
        if self.work_root is not None:
            self.work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        pdd = Path(tempfile.mkdtemp(prefix="aiops-run-", dir=self.work_root))
        os.chmod(pdd, 0o700)
        started = time.time()
        try:
            return self._run_in(pdd, spec, on_event or (lambda e: None), cancel or (lambda: False), started)
        finally:
            shutil.rmtree(pdd, ignore_errors=True)

    def _run_in(
        self,
        pdd: Path,
        spec: PlaybookRun,
        on_event: Callable[[RunEvent], None],
        cancel: Callable[[], bool],
        started: float,
    ) -> RunOutcome:
        (pdd / "env").mkdir(mode=0o700)
        extravars = pdd / "env" / "extravars"
        extravars.write_text(render_extravars(spec.params), encoding="utf-8")
        os.chmod(extravars, 0o600)
        if spec.inventory is not None:
            inventory = str(spec.inventory)
        else:
            inv = pdd / "inventory.yml"
            inv.write_text(yaml.safe_dump(_LOCAL_INVENTORY), encoding="utf-8")
            inventory = str(inv)
        (pdd / "tmp").mkdir(mode=0o700)
        envvars = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"),
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
        }
        events = _EventCollector(spec, on_event)
        stopper = _Stopper(cancel, time.monotonic() + spec.timeout, events)
        result = ansible_runner.run(
            private_data_dir=str(pdd),
            project_dir=str(spec.playbook.parent),
            playbook=str(spec.playbook),
            inventory=inventory,
            envvars=envvars,
            settings={"pexpect_timeout": 0.5},
            quiet=True,
            suppress_env_files=True,
            event_handler=events,
            cancel_callback=stopper,
        )
        return RunOutcome(
            status="timeout" if stopper.timed_out else str(result.status),
            rc=int(result.rc) if result.rc is not None else -1,
            started=started,
            finished=time.time(),
            stdout="\n".join(events.lines),
            failed_tasks=events.failed_tasks,
        )


class _EventCollector:
    """ansible-runner's event handler: keeps the events worth storing, their output and failed tasks,
    with secret parameter values masked, and remembers ansible-playbook's pid."""

    def __init__(self, spec: PlaybookRun, on_event: Callable[[RunEvent], None]):
        self.spec = spec
        self.on_event = on_event
        self.lines: list[str] = []
        self.failed_tasks: list[str] = []
        self.playbook_pid: int | None = None
        self._seq = 0

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.playbook_pid is None and isinstance(event.get("pid"), int):
            self.playbook_pid = event["pid"]
        kind = str(event.get("event", ""))
        if kind not in _KEEP_EVENTS:
            return False
        data = event.get("event_data", {}) or {}
        text = _redact(_ANSI.sub("", str(event.get("stdout", ""))).strip("\r\n"), self.spec)
        if kind == "verbose" and not text.strip():
            return False
        self._seq += 1
        task = _redact(str(data.get("task", "") or ""), self.spec)  # task names may template a secret
        failed = kind in ("runner_on_failed", "runner_on_unreachable", "runner_item_on_failed", "error")
        if failed and task:
            self.failed_tasks.append(task)
        if text:
            self.lines.append(text)
        res = data.get("res")
        self.on_event(
            RunEvent(
                seq=self._seq,
                kind=kind,
                task=task,
                host=str(data.get("host", "") or ""),
                failed=failed,
                changed=bool(res.get("changed", False)) if isinstance(res, dict) else False,
                stdout=text,
                at=time.time(),
            )
        )
        return False  # the run directory is deleted afterwards; nothing needs the event on disk


class _Stopper:
    """ansible-runner's cancel callback, with our own timeout. Before ansible-runner kills ansible-playbook's
    process group, it kills the workers that left that group (Ansible workers call setsid), so a hung
    command cannot outlive its run."""

    def __init__(self, cancel: Callable[[], bool], deadline: float, events: _EventCollector):
        self.cancel = cancel
        self.deadline = deadline
        self.events = events
        self.timed_out = False

    def __call__(self) -> bool:
        stop = self.cancel()
        if not stop and time.monotonic() > self.deadline:
            self.timed_out = stop = True
        if stop and self.events.playbook_pid is not None:
            kill_descendants(self.events.playbook_pid)
        return stop


def _redact(text: str, spec: PlaybookRun) -> str:
    for name in spec.secret_params:
        value = spec.params.get(name)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text
