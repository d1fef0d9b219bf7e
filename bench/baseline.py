"""Old against new in one run: a git worktree of an earlier revision, and workers run against either tree.

The previous release is checked out (`git worktree add --detach`) into a directory outside the repo and
reused by later runs; nothing of it is copied into the repo. A worker is a bench script run by path with
the same interpreter (the repo's .venv) and `PYTHONPATH` set to one tree, from a scratch directory, so
`import agent` finds that tree's code (the editable install's finder comes after `PYTHONPATH`). It
prints one JSON object as the last line of its output.

    >>> tree = Tree.current()
    >>> tree.name, tree.root == ROOT
    ('new', True)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
OLD_REVISION = "066d313"
WORKTREES = Path(tempfile.gettempdir()) / "aiops-bench-worktrees"


class Unavailable(RuntimeError):
    """A dependency of a benchmark (git, a worktree, PostgreSQL) is missing: the benchmark is skipped."""


class WorkerFailed(RuntimeError):
    """A worker exited with an error; the message ends with its stderr."""


@dataclass(frozen=True)
class Tree:
    """One checkout of the agent's code: `root` holds `agent/`, `detectors/` and `integrations/`."""

    name: str
    root: Path
    revision: str

    @classmethod
    def current(cls) -> Tree:
        """This checkout, as it is on disk: `+dirty` when the code has uncommitted changes."""
        head = _git("rev-parse", "--short", "HEAD") or "working tree"
        dirty = _git(
            "status", "--porcelain", "--untracked-files=no", "--", "agent", "detectors", "integrations"
        )
        return cls("new", ROOT, head + ("+dirty" if dirty else ""))

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a process that must import this tree's code."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONPATH"] = str(self.root)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return {**env, **(extra or {})}

    def argv(self, *args: str) -> list[str]:
        """`python ARGS...` with the repo's interpreter."""
        return [str(PYTHON), *args]


def worktree(revision: str = OLD_REVISION, name: str = "old") -> Tree:
    """A clean checkout of `revision` outside the repo, created on first use and reused after."""
    sha = _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if not sha:
        raise Unavailable(f"git revision {revision!r} not found in {ROOT}")
    path = WORKTREES / sha[:12]
    if path.exists():
        head = _git("-C", str(path), "rev-parse", "HEAD")
        dirty = _git("-C", str(path), "status", "--porcelain", "--untracked-files=no")
        if head == sha and not dirty:
            return Tree(name, path, revision)
        raise Unavailable(
            f"{path} exists but is not a clean checkout of {revision}; remove it (git worktree remove)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Unavailable(f"git worktree add failed: {done.stderr.strip()}")
    return Tree(name, path, revision)


def run_worker(
    tree: Tree,
    script: Path,
    args: Sequence[str] = (),
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run `script` (a file of bench/, by path) against `tree` and return the JSON object it printed last."""
    with tempfile.TemporaryDirectory(prefix="aiops-bench-cwd-") as cwd:
        done = subprocess.run(
            tree.argv(str(script), *args),
            cwd=cwd,
            env=tree.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise WorkerFailed(f"{script.name} ({tree.name}) exited {done.returncode}:\n{done.stderr[-6000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkerFailed(
            f"{script.name} ({tree.name}) printed no JSON:\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )
    return dict(json.loads(lines[-1]))


def run_code(tree: Tree, code: str, timeout: float = 600) -> dict[str, Any]:
    """Run a Python snippet against `tree`; it must print one JSON object as its last line."""
    with tempfile.TemporaryDirectory(prefix="aiops-bench-cwd-") as cwd:
        snippet = Path(cwd) / "snippet.py"
        snippet.write_text(code)
        return run_worker(tree, snippet, timeout=timeout)


def trees(old: str | None = None, new: str | None = None) -> tuple[Tree, Tree]:
    """(old, new): `old` (default OLD_REVISION) from a worktree; `new` this checkout, or a worktree of
    the revision given. Raises Unavailable when a revision cannot be checked out."""
    return worktree(old or OLD_REVISION), (worktree(new, "new") if new else Tree.current())


def comparison_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every old-against-new benchmark takes: the revisions, --top for a profile's rows
    and --json for the numbers."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--old", default=None, metavar="REV", help=f"the baseline revision (default {OLD_REVISION})"
    )
    p.add_argument("--new", default=None, metavar="REV", help="a revision instead of this checkout")
    p.add_argument("--top", type=int, default=15, help="rows of a profile to print")
    p.add_argument("--json", type=Path, help="write the numbers here")
    return p


def trees_or_skip(args: argparse.Namespace) -> tuple[Tree, Tree] | None:
    """`trees` for the parsed options, or None after saying why the benchmark is skipped."""
    try:
        return trees(args.old, args.new)
    except Unavailable as e:
        print(f"skipped: {e}")
        return None


def alternate(
    repeat: int,
    sides: Sequence[tuple[Tree, Any]],
    run: Callable[[Tree, Any, int], dict[str, Any]],
    line: Callable[[dict[str, Any]], str],
) -> dict[str, list[dict[str, Any]]]:
    """`repeat` rounds of `run(tree, arg, round)` for each (tree, arg) side in turn (alternating, so
    a noisy neighbour hurts both sides alike), printing `line(result)` after each."""
    runs: dict[str, list[dict[str, Any]]] = {tree.name: [] for tree, _ in sides}
    for i in range(repeat):
        for tree, arg in sides:
            r = run(tree, arg, i)
            runs[tree.name].append(r)
            print(f"  run {i + 1} {tree.name}: {line(r)}", flush=True)
    return runs


def medians(runs: dict[str, list[dict[str, Any]]], key: str) -> dict[str, float]:
    return {side: statistics.median(r[key] for r in results) for side, results in runs.items()}


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ratio(new: float, old: float) -> float:
    return new / old if old else float("inf")


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise Unavailable("git is not installed") from e
    return done.stdout.strip() if done.returncode == 0 else ""
