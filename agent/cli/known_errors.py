"""`aiops problems promote|update` and `aiops known-errors list|show`: the problem manager's workflow,
from a recurring candidate to a problem someone owns to a known error with its workaround."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, acting_user, fail, load, open_store
from agent.cli.output import emit_json, table, when
from agent.cli.records import problems
from agent.errors import InvalidTransition, NotFound
from agent.shell import problem_controls, views

known_errors = typer.Typer(
    help="Known errors: problems with a root cause and a workaround.", no_args_is_help=True
)


def _request(model: type[Any], **fields: Any) -> Any:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        fail("; ".join(f"{'.'.join(map(str, err['loc'])) or 'request'}: {err['msg']}" for err in e.errors()))


@problems.command("promote")
def problems_promote(
    problem_id: Annotated[int, typer.Argument(help="Problem candidate id.")],
    owner: Annotated[str, typer.Option("--owner", help="Who takes the problem on.")],
    title: Annotated[str | None, typer.Option("--title", help="A title for the problem.")] = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Promote a candidate to a problem with an owner (and a title)."""
    who = acting_user(config, store)
    req = _request(problem_controls.PromoteRequest, owner=owner, title=title)
    try:
        row = problem_controls.promote(open_store(config, store), problem_id, req, who, datetime.now(UTC))
    except (NotFound, InvalidTransition) as e:
        fail(str(e))
    if json:
        emit_json(views.problem_view(row))
    else:
        typer.echo(f"problem #{problem_id} promoted: {row.title} (owner {row.owner})")


@problems.command("update")
def problems_update(
    problem_id: Annotated[int, typer.Argument(help="Problem id.")],
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="What causes it.")] = None,
    workaround: Annotated[
        str | None,
        typer.Option("--workaround", help="What restores service meanwhile; makes it a known error."),
    ] = None,
    workaround_runbook: Annotated[
        str | None,
        typer.Option("--workaround-runbook", help="A catalog runbook that applies the workaround."),
    ] = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Record a problem's root cause and workaround; a workaround makes it a known error."""
    who = acting_user(config, store)
    req = _request(
        problem_controls.UpdateRequest,
        root_cause=root_cause,
        workaround=workaround,
        workaround_runbook=workaround_runbook,
    )
    runbooks = set(load(config).catalog.runbooks) if workaround_runbook else None
    try:
        row = problem_controls.update(
            open_store(config, store), problem_id, req, who, datetime.now(UTC), runbooks
        )
    except (NotFound, InvalidTransition, ValueError) as e:
        fail(str(e))
    if json:
        emit_json(views.problem_view(row))
    elif row.known_error_id is not None:
        typer.echo(f"problem #{problem_id} is known error #{row.known_error_id}: new incidents link to it")
    else:
        typer.echo(f"problem #{problem_id} updated")


@known_errors.command("list")
def known_errors_list(
    json: JsonOpt = False, config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None
) -> None:
    """Known errors, newest first."""
    rows = [views.known_error_view(k) for k in open_store(config, store).known_errors.list()]
    if json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no known errors")
        return
    typer.echo(
        table(
            ["id", "problem", "signature", "runbook", "recorded", "title"],
            [
                [
                    r["id"],
                    r["problem_id"],
                    r["signature"],
                    r["workaround_runbook"],
                    when(r["created_at"]),
                    r["title"],
                ]
                for r in rows
            ],
        )
    )


@known_errors.command("show")
def known_errors_show(
    known_error_id: Annotated[int, typer.Argument(help="Known error id.")],
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """One known error: root cause, workaround, and the incidents linked to it."""
    try:
        doc = problem_controls.known_error_detail(open_store(config, store), known_error_id)
    except NotFound as e:
        fail(str(e))
    if json:
        emit_json(doc)
        return
    out = [
        f"Known error #{doc['id']}: {doc['title']}",
        f"  problem #{doc['problem_id']}; signatures {', '.join(doc['signatures']) or doc['signature']}",
        f"  recorded {when(doc['created_at'])} by {doc['created_by'] or '-'}",
        f"  root cause: {doc['root_cause'] or '-'}",
        f"  workaround: {doc['workaround']}",
        f"  workaround runbook: {doc['workaround_runbook'] or '-'}",
        "",
    ]
    if doc["incidents"]:
        out.append(
            table(
                ["incident", "pri", "status", "opened"],
                [[i["id"], i["priority"], i["status"], when(i["opened_at"])] for i in doc["incidents"]],
            )
        )
    else:
        out.append("no incidents linked yet")
    typer.echo("\n".join(out))
