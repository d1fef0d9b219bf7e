"""Run Ansible playbooks through ansible-runner, treating every parameter as untrusted data.

Parameters: ansible-playbook reads them as JSON extra vars, each string as `{"__ansible_unsafe": text}`
(Ansible's own JSON form of `!unsafe`): never templated, so a label value like
`{{ lookup('pipe', 'id') }}` stays text, and it stays the text it was. A YAML `!unsafe "007"` would not:
ansible-core 2.19 re-resolves the scalar as if unquoted, so "007" arrived as 7, "yes" as True,
"12:30" as 750. Integers, numbers and booleans are JSON numbers and booleans. Playbooks must still
`| quote` anything they hand to a shell.

Nothing secret reaches a file: the extra vars go through a FIFO in the run directory, written by the
agent while ansible-playbook reads it (ansible-runner itself would write them to `env/extravars`; an
environment variable would be recorded in `artifacts/*/command` and seen by every task's `env`);
module arguments go to Python through a pipe (ANSIBLE_PIPELINING), not an AnsiballZ file; no stdout
or event files are kept; and the environment ansible-runner records in `artifacts/*/command` is the
minimal one below. Tasks that print or return a secret must say `no_log: true`, since ansible-runner's
event callback passes results through short-lived files.

Environment: ansible-runner starts from the agent's whole `os.environ` (tokens, store URL); we replace
it with PATH, the locale, a HOME and TMPDIR inside the run directory, our `ANSIBLE_*` settings,
ansible-runner's wiring for its event callback, and the variables the catalog entry lists (`env`).

Run directories live under the work root, mode 0700, locked (flock) while in use and removed after the
run; `sweep_run_dirs` removes the ones an agent that died left behind, never one in use.

Process tree: ansible-playbook runs under `integrations.proctree`'s reaper (a child subreaper with
PR_SET_PDEATHSIG), so a timeout, a cancel or the agent's death kills every process of the run,
including those that left with setsid or `(cmd &)`; see that module for why this mechanism.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ansible_runner.config.runner import RunnerConfig
from ansible_runner.runner import Runner

from integrations.proctree import child_with_arg, kill_tree, reaper_command

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
_RUN_PREFIX = "aiops-run-"
_NEW_PREFIX = ".aiops-new-"
# What ansible-runner adds to the environment for its event callback, kept when we drop the rest.
_RUNNER_ENV = frozenset(
    {
        "ANSIBLE_CALLBACK_PLUGINS",
        "ANSIBLE_STDOUT_CALLBACK",
        "ANSIBLE_RETRY_FILES_ENABLED",
        "ANSIBLE_HOST_KEY_CHECKING",
        "AWX_ISOLATED_DATA_DIR",
        "RUNNER_OMIT_EVENTS",
        "RUNNER_ONLY_FAILED_EVENTS",
    }
)


@dataclass(frozen=True)
class PlaybookRun:
    """What to run: a playbook, its (untrusted) parameters, a time limit, optionally an inventory, and
    the names of the agent's environment variables the playbook may see (the catalog's `env`)."""

    playbook: Path
    params: Mapping[str, ParamValue]
    timeout: float
    inventory: Path | None = None
    secret_params: frozenset[str] = frozenset()
    pass_env: tuple[str, ...] = ()


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


def render_extravars(params: Mapping[str, ParamValue]) -> str:
    """Extra vars for `-e @file`: JSON, every string marked unsafe, the other types as JSON's own."""

    def wire(name: str, value: ParamValue) -> object:
        if isinstance(value, str):
            return {"__ansible_unsafe": value}
        if isinstance(value, bool | int | float):
            return value
        raise TypeError(f"parameter {name!r}: {type(value).__name__} is not a runbook parameter type")

    return json.dumps({k: wire(k, v) for k, v in params.items()}, ensure_ascii=False, allow_nan=False)


def sweep_run_dirs(work_root: Path | None) -> int:
    """Remove the run directories no live agent holds (an agent that died left them); returns how many.
    Safe while other agents run playbooks under the same root: their directories are locked."""
    removed = 0
    for pdd in _root(work_root).glob(_RUN_PREFIX + "*"):
        try:
            fd = os.open(pdd, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:  # not ours, not a directory, or gone
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # in use
        finally:
            os.close(fd)
        shutil.rmtree(pdd, ignore_errors=True)
        removed += 1
    return removed


def _root(work_root: Path | None) -> Path:
    return work_root if work_root is not None else Path(tempfile.gettempdir())


@contextmanager
def _run_dir(work_root: Path | None) -> Iterator[Path]:
    """A fresh private (0700) directory, locked while in use and removed afterwards. It is created
    under a name the sweep ignores and renamed once locked, so a sweep never sees it unlocked."""
    root = _root(work_root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    pdd = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=root))
    lock = os.open(pdd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pdd = pdd.rename(pdd.with_name(_RUN_PREFIX + pdd.name.removeprefix(_NEW_PREFIX)))
        yield pdd
    finally:
        shutil.rmtree(pdd, ignore_errors=True)
        os.close(lock)


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
        started = time.time()
        with _run_dir(self.work_root) as pdd:
            return self._run_in(pdd, spec, on_event or (lambda e: None), cancel or (lambda: False), started)

    def _run_in(
        self,
        pdd: Path,
        spec: PlaybookRun,
        on_event: Callable[[RunEvent], None],
        cancel: Callable[[], bool],
        started: float,
    ) -> RunOutcome:
        if spec.inventory is not None:
            inventory = str(spec.inventory)
        else:
            inv = pdd / "inventory.yml"
            inv.write_text(yaml.safe_dump(_LOCAL_INVENTORY), encoding="utf-8")
            inventory = str(inv)
        env = _environment(pdd, spec.pass_env)
        vars_fifo = pdd / "extravars.fifo"
        config = RunnerConfig(
            private_data_dir=str(pdd),
            project_dir=str(spec.playbook.parent),
            playbook=str(spec.playbook),
            inventory=inventory,
            envvars=env,
            quiet=True,
            suppress_env_files=True,
            cmdline=f"-e @{shlex.quote(str(vars_fifo))}" if spec.params else None,
        )
        config.prepare()
        # Set after prepare(): it drops `settings=` when there is no env/settings file (ansible-runner 2.4).
        config.pexpect_timeout = 0.5  # how often the cancel callback is asked
        config.suppress_output_file = True  # no stdout/stderr files: the output is in events and the store
        config.env = {k: v for k, v in config.env.items() if k in env or k in _RUNNER_ENV}
        config.command = reaper_command(str(pdd), config.command)
        events = _EventCollector(spec, on_event)
        stopper = _Stopper(cancel, time.monotonic() + spec.timeout, str(pdd))
        runner = Runner(config, event_handler=events, cancel_callback=stopper)
        with _feeding(vars_fifo, render_extravars(spec.params) if spec.params else None):
            runner.run()
        return RunOutcome(
            status="timeout" if stopper.timed_out else str(runner.status),
            rc=int(runner.rc) if runner.rc is not None else -1,
            started=started,
            finished=time.time(),
            stdout="\n".join(events.lines),
            failed_tasks=events.failed_tasks,
        )


def _environment(pdd: Path, pass_env: tuple[str, ...]) -> dict[str, str]:
    """The whole environment of the run, apart from ansible-runner's callback wiring."""
    (pdd / "home").mkdir(mode=0o700)
    (pdd / "tmp").mkdir(mode=0o700)
    ours = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "HOME": str(pdd / "home"),
        "TMPDIR": str(pdd / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"),
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_PIPELINING": "1",  # module arguments (maybe secret) through a pipe, not a file
    }
    return {**{n: os.environ[n] for n in pass_env if n in os.environ}, **ours}


@contextmanager
def _feeding(fifo: Path, data: str | None) -> Iterator[None]:
    """Serve `data` once through a new FIFO at `fifo` while the body runs (nothing when None). If no
    reader came (ansible-playbook failed or was stopped first), the writer is released afterwards."""
    if data is None:
        yield
        return
    os.mkfifo(fifo, 0o600)

    def write() -> None:
        try:
            with open(fifo, "w", encoding="utf-8") as f:
                f.write(data)
        except OSError:  # the reader went away
            pass

    writer = threading.Thread(target=write, name="aiops-extravars", daemon=True)
    writer.start()
    try:
        yield
    finally:
        if writer.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # lets a blocked open() return
        writer.join(5)


class _EventCollector:
    """ansible-runner's event handler: keeps the events worth storing, their output and failed tasks,
    with secret parameter values masked."""

    def __init__(self, spec: PlaybookRun, on_event: Callable[[RunEvent], None]):
        self.spec = spec
        self.on_event = on_event
        self.lines: list[str] = []
        self.failed_tasks: list[str] = []
        self._seq = 0

    def __call__(self, event: dict[str, Any]) -> bool:
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
    """ansible-runner's cancel callback, with our own timeout. When the run must stop, it kills the
    reaper's whole tree before ansible-runner kills the reaper's process group (which alone would miss
    the workers that called setsid and the orphans the reaper adopted)."""

    def __init__(self, cancel: Callable[[], bool], deadline: float, run: str):
        self.cancel = cancel
        self.deadline = deadline
        self.run = run
        self.timed_out = False

    def __call__(self) -> bool:
        stop = self.cancel()
        if not stop and time.monotonic() > self.deadline:
            self.timed_out = stop = True
        if stop:
            reaper = child_with_arg(os.getpid(), self.run)
            if reaper is not None:
                kill_tree(reaper)
        return stop


def _redact(text: str, spec: PlaybookRun) -> str:
    for name in spec.secret_params:
        value = spec.params.get(name)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text
