"""Process trees on Linux: Ansible workers call setsid(), so killing ansible-playbook's process group
leaves the commands they started running. Finding descendants by parent pid catches them all."""

from __future__ import annotations

import os
import signal
from pathlib import Path

_PROC = Path("/proc")


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid`, children before grandchildren; empty where /proc is unavailable."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir(_PROC) if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            stat = (_PROC / entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def kill_descendants(pid: int) -> int:
    """SIGKILL every descendant of `pid` (not `pid` itself); returns how many were signalled."""
    killed = 0
    for child in descendants(pid):
        try:
            os.kill(child, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed
