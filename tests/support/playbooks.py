"""Running real playbooks through integrations.ansible in tests, and watching what they leave behind."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from integrations.ansible import AnsibleRunner, ParamValue, PlaybookRun, RunEvent, RunOutcome

_unique = itertools.count(1)


@dataclass
class Observed:
    """What a run looked like from the outside: each event, and whether its private dir existed then."""

    work_root: Path
    events: list[RunEvent] = field(default_factory=list)
    during_run: list[bool] = field(default_factory=list)
    modes: set[int] = field(default_factory=set)

    def on_event(self, event: RunEvent) -> None:
        self.events.append(event)
        run_dirs = run_dirs_in(self.work_root)
        self.during_run.append(bool(run_dirs))
        self.modes.update(stat.S_IMODE(pdd.stat().st_mode) for pdd in run_dirs)

    def kinds(self) -> list[tuple[str, str]]:
        """(kind, task) of the structural events: `verbose` ones are stray output lines (Python or
        Ansible warnings, which come and go with library versions), not steps of the playbook."""
        return [(e.kind, e.task) for e in self.events if e.kind != "verbose"]


def run_dirs_in(work_root: Path) -> list[Path]:
    return list(work_root.glob("aiops-run-*"))


def run(
    tmp_path: Path,
    playbook: Path,
    params: Mapping[str, ParamValue],
    *,
    timeout: float = 60.0,
    secret: frozenset[str] = frozenset(),
    pass_env: tuple[str, ...] = (),
    cancel: Callable[[], bool] | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
) -> tuple[RunOutcome, Observed]:
    """Run `playbook` on localhost with runs under `tmp_path / "runs"`."""
    work_root = tmp_path / "runs"
    seen = Observed(work_root)

    def handle(event: RunEvent) -> None:
        seen.on_event(event)
        if on_event is not None:
            on_event(event)

    spec = PlaybookRun(
        playbook=playbook, params=params, timeout=timeout, secret_params=secret, pass_env=pass_env
    )
    outcome = AnsibleRunner(work_root).run(spec, on_event=handle, cancel=cancel)
    return outcome, seen


def write_playbook(tmp_path: Path, tasks: list[dict[str, object]]) -> Path:
    path = tmp_path / f"playbook-{next(_unique)}.yml"
    play = {"name": "Test play", "hosts": "all", "gather_facts": False, "tasks": tasks}
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def unique_duration(seconds: int) -> str:
    """A `sleep` argument no other process uses, so the test can find (and miss) exactly its own."""
    return f"{seconds}.{os.getpid()}{next(_unique)}"


def processes_running(needle: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in text:
            found.append(text)
    return found


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Regular files under `root` holding any of `needles` (FIFOs and sockets are skipped, not read)."""
    found = []
    for path in root.rglob("*"):
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                continue
            data = path.read_bytes()
        except OSError:  # removed while we looked
            continue
        found += [f"{path}: {n!r}" for n in needles if n.encode() in data]
    return found


def kill_processes(needles: list[str]) -> None:
    """SIGKILL every process whose command line holds one of `needles`: a failed test's leftovers."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if any(n.encode() in cmdline.read_bytes() for n in needles):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead: it only waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
