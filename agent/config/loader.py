"""Load agent.yaml and the files it references; report every problem as `file:line: field: message`."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.config import yamlsrc
from agent.config.bundle import Config
from agent.config.models import AgentConfig, Catalog, RulesFile, ServicesFile
from agent.config.semantic import check_semantics
from agent.errors import ConfigError, ConfigIssue

M = TypeVar("M", bound=BaseModel)


def load_config(
    path: str | Path, env: dict[str, str] | None = None, rules_file: Path | None = None
) -> Config:
    """Validate schema of all files first; only a schema-clean config is cross-checked. `rules_file` replaces
    the rules file agent.yaml names (replay's shadow mode tries another rule set on the same config).

    Raises ConfigError listing every issue found; never returns a half-valid config.
    """
    agent_path = Path(path).resolve()
    agent_src = yamlsrc.load(agent_path, env)
    issues = list(agent_src.issues)
    agent = _validate(AgentConfig, agent_src, issues) if not agent_src.issues else None
    if agent is None:
        raise ConfigError(issues)

    base = agent_path.parent
    sources = {
        "services": yamlsrc.load((base / agent.services_file).resolve(), env),
        "rules": yamlsrc.load((rules_file or base / agent.rules_file).resolve(), env),
        "catalog": yamlsrc.load((base / agent.catalog_file).resolve(), env),
    }
    for src in sources.values():
        issues.extend(src.issues)
    services = _validate(ServicesFile, sources["services"], issues)
    rules = _validate(RulesFile, sources["rules"], issues)
    catalog = _validate(Catalog, sources["catalog"], issues)
    if issues or services is None or rules is None or catalog is None:
        raise ConfigError(issues)

    config = Config(
        agent=agent,
        services=services,
        rules=rules.rules,
        catalog=catalog,
        agent_file=agent_path,
        catalog_file=sources["catalog"].path,
        files={"agent": agent_path, **{k: s.path for k, s in sources.items()}},
    )
    issues.extend(check_semantics(config, {"agent": agent_src, **sources}))
    if issues:
        raise ConfigError(issues)
    return config


def _validate(model: type[M], src: yamlsrc.Source, issues: list[ConfigIssue]) -> M | None:
    if src.issues:
        return None
    data = src.data if src.data is not None else {}
    if not isinstance(data, dict):
        issues.append(src.issue((), f"expected a mapping at the top of the file, got {type(data).__name__}"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            issues.append(_to_issue(model, src, tuple(err["loc"]), err))
        return None


def _to_issue(model: type[BaseModel], src: yamlsrc.Source, loc: yamlsrc.Loc, err: Any) -> ConfigIssue:
    loc = _strip_union_tags(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = sorted(_fields_at(model, loc[:-1]))
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown key (allowed: {', '.join(allowed)}){hint}"
    elif kind == "missing":
        message = "required field is missing"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        shown = "input" in err and not isinstance(err["input"], dict | list) and not _secret_field(loc)
        if kind != "value_error" and shown:
            message += f" (got {err['input']!r})"
    return src.issue(loc, message)


def _secret_field(loc: yamlsrc.Loc) -> bool:
    """A field whose value may be a credential: its value is never echoed in a message."""
    return any(isinstance(p, str) and _SECRET_NAMES.search(p) for p in loc)


def _strip_union_tags(loc: yamlsrc.Loc) -> yamlsrc.Loc:
    """pydantic inserts the tried union member (`str`, `list[str]`) into locations; users never wrote those."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))


_TYPE_TAGS = {"str", "int", "float", "bool", "function-after", "function-before", "constrained-str"}
_SECRET_NAMES = re.compile(r"(?i)token|passw|secret|url|header|key")


def _fields_at(model: Any, loc: yamlsrc.Loc) -> set[str]:
    """The keys a model accepts at `loc`, following dict values and list items through the annotations."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return set()
            tp = field.annotation
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return set()
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return set(tp.model_fields)
    return set()


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            inner = _unwrap(arg)
            if (isinstance(inner, type) and issubclass(inner, BaseModel)) or typing.get_origin(inner) in (
                list,
                dict,
            ):
                return inner
    return tp
