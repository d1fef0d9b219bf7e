"""Process trees on Linux, and the reaper that keeps a runbook's whole tree inside one process.

Killing ansible-playbook's process group is not enough: Ansible workers call setsid(), and a task's
`(cmd &)` double-forks, so its process is reparented away from ansible-playbook (to init). The agent
therefore starts ansible-playbook through this file run as a script, a small reaper that:

- makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so every orphan of the run is reparented to
  it and stays findable as one of its descendants, however it detached;
- asks for SIGTERM when the agent dies (PR_SET_PDEATHSIG), even by kill -9, and then kills its whole
  tree at once, instead of ansible-playbook lingering until it next writes to its closed pty;
- kills whatever is left of the tree when ansible-playbook exits, so no runbook process outlives its
  run, and exits with ansible-playbook's status.

The agent's timeout and cancel kill the reaper's tree with `kill_tree`. A cgroup would do all of this
too but needs a writable cgroup hierarchy (rarely true in containers); this needs only Linux >= 3.4.
Run as a script (not `-m`) with the standard library only, so it starts fast in a bare environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

_PROC = Path("/proc")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _table() -> list[tuple[int, str, int]]:
    """(pid, state, parent pid) of every process; empty where /proc is unavailable."""
    try:
        entries = [e for e in os.listdir(_PROC) if e.isdigit()]
    except OSError:
        return []
    out = []
    for entry in entries:
        try:
            stat = (_PROC / entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        out.append((int(entry), state, int(ppid)))
    return out


def descendants(pid: int) -> list[int]:
    """All live (not zombie) descendants of `pid`, children before grandchildren."""
    children: dict[int, list[int]] = {}
    for child, state, parent in _table():
        if state != "Z":  # a zombie has no children left: they were reparented when it died
            children.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int, timeout: float = 5.0) -> bool:
    """SIGKILL every descendant of `pid` (not `pid` itself) until none is left alive, catching those
    forked meanwhile; True when the tree is empty. Complete only for a subreaper's tree (or one whose
    processes never double-fork), since an orphan elsewhere leaves the tree for init."""
    deadline = time.monotonic() + timeout
    while live := descendants(pid):
        if time.monotonic() > deadline:
            return False
        for child in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        time.sleep(0.01)
    return True


def child_with_arg(parent: int, arg: str) -> int | None:
    """The live child of `parent` that has `arg` as one of its command-line arguments, if any."""
    needle = arg.encode()
    for pid, state, ppid in _table():
        if ppid != parent or state == "Z":
            continue
        try:
            argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in argv:
            return pid
    return None


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def reap(parent: int, argv: list[str]) -> int:
    """Run `argv` as the reaper described above; `parent` is the agent's pid, to notice that it died
    before PR_SET_PDEATHSIG was in place."""

    def end(signum: int, _frame: object) -> None:
        kill_tree(os.getpid())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 128 + signal.SIGTERM
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    main = os.posix_spawnp(argv[0], argv, os.environ)
    while True:
        pid, status = os.wait()  # also reaps the orphans the subreaper adopts
        if pid == main:
            break
    kill_tree(os.getpid())
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def reaper_command(run: str, argv: list[str]) -> list[str]:
    """`argv` run under the reaper, a child of this process; `run` names the run (a unique string, e.g.
    its directory) so that `child_with_arg(os.getpid(), run)` finds this reaper again."""
    return [sys.executable, "-I", "-S", __file__, str(os.getpid()), run, "--", *argv]


if __name__ == "__main__":
    # python proctree.py AGENT_PID RUN -- COMMAND [ARG...]
    sys.exit(reap(int(sys.argv[1]), sys.argv[4:]))
