"""`aiops silences` and `aiops automation`: the on-call engineer's hands on the safety envelope. Writes
go to the store; a running agent applies them on its next housekeeping tick (seconds, not a restart)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, acting_user, fail, load, open_store
from agent.cli.output import emit_json, table, when
from agent.config.models import CircuitBreaker
from agent.errors import InvalidTransition, NotFound
from agent.shell import controls

silences = typer.Typer(
    help="Silences: signals they match act on nothing and notify nobody.", no_args_is_help=True
)
automation = typer.Typer(help="The kill switch and circuit breakers.", no_args_is_help=True)


def _error(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'silence'}: {err['msg'].removeprefix('Value error, ')}"
        for err in e.errors(include_url=False)
    )


@silences.command("add")
def silences_add(
    match: Annotated[
        list[str],
        typer.Option(
            "--match", "-m", help="NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX; repeat to AND."
        ),
    ],
    comment: Annotated[
        str, typer.Option("--comment", help="Why (required): shown wherever the silence acts.")
    ],
    duration: Annotated[
        str | None, typer.Option("--for", help="How long, e.g. 2h (or give --until).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End, ISO 8601 (UTC unless it says otherwise).")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start, ISO 8601 (default: now).")] = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Silence the signals whose labels match every --match (`service` and `signal` match too)."""
    who = acting_user(config, store)
    try:
        req = controls.SilenceRequest(
            matchers=match,
            comment=comment,
            duration=duration,
            ends_at=_utc(until),
            starts_at=_utc(start),
        )
        row = controls.add_silence(open_store(config, store), req, who, datetime.now(UTC))
    except ValidationError as e:
        fail(_error(e))
    except ValueError as e:
        fail(str(e))
    view = controls.silence_view(row, datetime.now(UTC))
    if json:
        emit_json(view)
    else:
        typer.echo(
            f"silence #{view['id']} {view['state']} until {when(view['ends_at'])}: "
            f"{', '.join(view['matchers'])} (a running agent applies it within one housekeeping interval)"
        )


@silences.command("list")
def silences_list(
    all_: Annotated[bool, typer.Option("--all", help="Also silences that ended.")] = False,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Silences in force or to come, newest first."""
    now = datetime.now(UTC)
    rows = [controls.silence_view(r, now) for r in open_store(config, store).silences.list(now, all_)]
    if json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no silences")
        return
    headers = ["id", "state", "matchers", "starts", "ends", "by", "comment"]
    typer.echo(
        table(
            headers,
            [
                [
                    r["id"],
                    r["state"],
                    ", ".join(r["matchers"]),
                    when(r["starts_at"]),
                    when(r["ends_at"]),
                    r["created_by"],
                    r["comment"],
                ]
                for r in rows
            ],
        )
    )


@silences.command("expire")
def silences_expire(
    silence_id: int, json: JsonOpt = False, config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None
) -> None:
    """End a silence now."""
    who = acting_user(config, store)
    try:
        row = open_store(config, store).silences.expire(silence_id, who, datetime.now(UTC))
    except (NotFound, InvalidTransition) as e:
        fail(str(e))
    if json:
        emit_json(controls.silence_view(row, datetime.now(UTC)))
    else:
        typer.echo(f"silence #{silence_id} expired")


ServiceOpt = Annotated[str | None, typer.Option("--service", help="One service (default: everything).")]


@automation.command("status")
def automation_status(
    json: JsonOpt = False, config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None
) -> None:
    """What holds automation back: pauses and open circuit breakers."""
    breaker, services = CircuitBreaker(), []
    if store is None:
        cfg = load(config)
        breaker = cfg.agent.remediation.circuit_breaker
        services = [s.name for s in cfg.services.services]
    doc = controls.automation_status(open_store(config, store), breaker, datetime.now(UTC), services)
    if json:
        emit_json(doc)
        return
    if not doc["paused"] and not doc["breakers"]:
        typer.echo("automation: running (no pause, no open circuit breaker)")
    for p in doc["paused"]:
        typer.echo(f"paused {p['scope']} since {when(p['at'])} by {p['by']}: {p['reason']}")
    for b in doc["breakers"]:
        typer.echo(f"breaker open: {b['reason']}")
    if doc["log"]:
        typer.echo("\nrecent switches:")
        typer.echo(
            table(
                ["at", "kind", "scope", "runbook", "by", "reason"],
                [
                    [when(r["at"]), r["kind"], r["scope"], r["runbook"], r["by"], r["reason"]]
                    for r in doc["log"]
                ],
            )
        )


def _switch(
    kind: Literal["pause", "resume"],
    service: str | None,
    runbook: str | None,
    reason: str,
    json: bool,
    config: Path,
    store: str | None,
) -> None:
    who = acting_user(config, store, role="admin")
    services = runbooks = None
    if store is None:
        cfg = load(config)
        services = {s.name for s in cfg.services.services}
        runbooks = set(cfg.catalog.runbooks)
    try:
        req = controls.SwitchRequest(service=service, runbook=runbook, reason=reason)
        row = controls.switch(
            open_store(config, store), kind, req, who, datetime.now(UTC), services, runbooks
        )
    except ValidationError as e:
        fail(_error(e))
    except ValueError as e:
        fail(str(e))
    if json:
        emit_json(row.model_dump(mode="json"))
        return
    scope = f"for {service}" if service else "everywhere"
    what = f"{runbook} " if runbook else ""
    typer.echo(
        f"automation {what}{kind}d {scope} (a running agent applies it within one housekeeping interval)"
    )


@automation.command("pause")
def automation_pause(
    reason: Annotated[str, typer.Option("--reason", help="Why (required): shown on every change held back.")],
    service: ServiceOpt = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Stop all automation, or one service's, until resumed (needs an admin when AIOPS_TOKEN is set)."""
    _switch("pause", service, None, reason, json, config, store)


@automation.command("resume")
def automation_resume(
    service: ServiceOpt = None,
    runbook: Annotated[
        str | None, typer.Option("--runbook", help="Close only this runbook's circuit breakers.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Resume automation (everywhere or for one service) and close its circuit breakers; incidents
    still active and still matching a rule are remediated."""
    _switch("resume", service, runbook, reason, json, config, store)


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a time: use ISO 8601, e.g. 2026-12-06T22:00:00Z")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
