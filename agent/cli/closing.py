"""`aiops incidents close ID [--review FILE]`: the end of an incident's life, with its post-incident
review (summary, impact, root cause, actions) as a YAML or JSON file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, acting_user, fail, load, open_store
from agent.cli.output import emit_json
from agent.cli.records import WaitOpt, incidents
from agent.config.models import IncidentsConfig
from agent.errors import InvalidTransition, NotFound
from agent.shell import controls, views

REVIEW_EXAMPLE = "summary: ...\nimpact: ...\nroot_cause: ...\nactions: [..., ...]"


def read_review(path: Path) -> controls.ReviewRequest:
    """The review in `path`, or exit 1 naming the file and what is wrong with it."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"{path}: cannot read the review: {e.strerror}")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        fail(f"{path}{where}: not YAML or JSON: {getattr(e, 'problem', e)}")
    try:
        return controls.ReviewRequest.model_validate(doc)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '(document)'}: {err['msg']}"
            for err in e.errors(include_url=False)
        )
        fail(f"{path}: {problems} (a review looks like:\n{REVIEW_EXAMPLE})")


@incidents.command("close")
def incidents_close(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    review: Annotated[
        Path | None,
        typer.Option(
            "--review", help="Post-incident review: YAML/JSON with summary, impact, root_cause, actions."
        ),
    ] = None,
    wait: WaitOpt = 15,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Close a resolved incident (P1/P2 need --review, see incidents.review_required)."""
    who = acting_user(config, store)
    required = (IncidentsConfig() if store is not None else load(config).agent.incidents).review_required
    body = read_review(review) if review is not None else None
    s = open_store(config, store)
    try:
        row, refused = controls.close_incident(s, incident_id, body, who, required, datetime.now(UTC), wait)
    except (NotFound, InvalidTransition) as e:
        fail(str(e))
    if refused:
        fail(refused)
    if json:
        emit_json(views.incident_detail(s, incident_id))
    elif row.status == "closed":
        typer.echo(f"incident #{incident_id} closed" + (" with its post-incident review" if body else ""))
    else:
        typer.echo(
            f"closing incident #{incident_id} requested: no agent answered within {wait:g}s; it closes when one leads"
        )
