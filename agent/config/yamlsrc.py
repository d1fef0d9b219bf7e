"""YAML loading that remembers where every key came from, so errors can name file and line."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigIssue

Loc = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Source:
    """A parsed YAML file: its data, and the line of every key and list item by path."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def line(self, loc: Loc) -> int:
        """Line of the deepest known path prefix of `loc` (1 when nothing is known)."""
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 1

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return ConfigIssue(str(self.path), self.line(loc), format_loc(loc) or "(file)", message)


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load(path: Path, env: dict[str, str] | None = None) -> Source:
    """Parse `path`, expanding `${VAR}` / `${VAR:-default}` in string values from `env`.

    Problems (unreadable file, YAML syntax, duplicate keys, unset variables) are collected in
    `Source.issues` rather than raised, so one run reports every problem of every file.
    """
    env = dict(os.environ) if env is None else env
    src = Source(path=path, data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        what = "no such file" if isinstance(e, FileNotFoundError) else f"cannot read it: {e.strerror or e}"
        src.issues.append(ConfigIssue(str(path), 0, "", what))
        return src
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e)
        context, start = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and start is not None and mark is not None and start.line != mark.line:
            # The parser notices an unclosed bracket or quote lines later; name where it began.
            problem += f" ({context} started on line {start.line + 1})"
        src.issues.append(ConfigIssue(str(path), line, "(syntax)", f"invalid YAML: {problem}"))
        return src
    if node is None:
        src.data = {}
        return src
    src.data = _Builder(src, env).build(node, ())
    return src


class _Builder:
    """Turns a composed YAML node tree into plain data while recording key lines."""

    def __init__(self, src: Source, env: dict[str, str]):
        self.src = src
        self.env = env
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        src = self.src
        src.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalars.construct_object(key_node)
                if not isinstance(key, str | int):
                    src.issues.append(src.issue(loc, f"keys must be strings, got {key!r}"))
                    continue
                child = (*loc, key)
                if key in out:
                    dup = ConfigIssue(
                        str(src.path),
                        key_node.start_mark.line + 1,
                        format_loc(child),
                        "duplicate key (the later value would silently win)",
                    )
                    src.issues.append(dup)
                    continue
                src.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                src.lines[(*loc, i)] = item.start_mark.line + 1
                items.append(self.build(item, (*loc, i)))
            return items
        value = self.scalars.construct_object(node)
        if isinstance(value, str) and "${" in value:
            return _expand(value, loc, src, self.env)
        return value


def _expand(value: str, loc: Loc, src: Source, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        src.issues.append(
            src.issue(loc, f"environment variable {name} is not set (or use ${{{name}:-default}})")
        )
        return ""

    return _ENV.sub(sub, value)
