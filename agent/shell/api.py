"""The HTTP API (FastAPI): health, the agent's metrics, incidents, changes, problems and known errors, and
the review UI.

Reads are open unless `api.read_requires_token` is set; writes need a bearer token whose role allows them,
checked before their body is read (see agent/shell/bodies.py). No input should get a 5xx: ids are bounded
to what the store can hold, statuses to their vocabulary.
"""

import hmac
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from agent.clock import Clock
from agent.config.models import ROLE_RANK, AlertsConfig, ApiConfig, CircuitBreaker, IncidentsConfig
from agent.core.domain import ChangeKind, ChangeStatus, IncidentStatus, Priority
from agent.core.events import Acknowledge, AlertsReceived
from agent.core.incidents import can_become
from agent.errors import InvalidTransition, NotFound
from agent.shell import controls, views
from agent.shell.bodies import Id, read_json, validate
from agent.shell.envelope_api import add_envelope_routes
from agent.shell.problem_api import add_problem_routes
from agent.shell.series import SeriesReader
from agent.shell.store import Store
from integrations.alertmanager import Limits, WebhookPayload

# A list filter's free text: bounded, and without control characters (PostgreSQL refuses NUL in text).
FilterText = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
UI_DIR = Path(__file__).parent / "ui"
# The UI shows untrusted monitoring data: no inline script, nothing from elsewhere, no framing.
UI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class Decision(BaseModel):
    note: str = Field(default="", max_length=2000)


def create_app(
    store: Store,
    registry: CollectorRegistry,
    api: ApiConfig,
    clock: Clock,
    readiness: Callable[[], dict[str, Any]],
    wake: Callable[[], None] = lambda: None,
    settle: float = 5.0,
    alerts: AlertsConfig | None = None,
    breaker: CircuitBreaker | None = None,
    services: Collection[str] | None = None,
    runbooks: Collection[str] | None = None,
    incidents: IncidentsConfig | None = None,
    series: SeriesReader | None = None,
    dependencies: Collection[tuple[str, str]] = (),
) -> FastAPI:
    """Writes go to the store (a decision, or the leader's inbox) whichever agent serves them; `wake`
    tells this agent's core, if it leads, to apply the inbox now. An acknowledgement waits up to
    `settle` seconds for the leader to apply it, so the answer shows its effect. `services` and
    `runbooks`, when given, are the names a pause or resume may use. Without `series`, incident charts
    show only what the store recorded."""
    max_clock_skew = (alerts or AlertsConfig()).max_clock_skew
    charts = series or SeriesReader(store, clock)
    app = FastAPI(
        title="aiops-agent", version="1", docs_url="/docs", redoc_url=None, max_body_size=api.max_body
    )
    tokens = [(t.token.get_secret_value().encode(), t.name, t.role) for t in api.tokens]

    def identify(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        found = None
        for secret, name, role in tokens:
            if hmac.compare_digest(secret, presented.strip().encode()):
                found = (name, role)
        return found

    def require(role: str) -> Callable[[Request], str]:
        def check(request: Request) -> str:
            who = identify(request)
            if who is None:
                raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            if ROLE_RANK[who[1]] < ROLE_RANK[role]:
                raise HTTPException(403, f"role {who[1]} may not do this (needs {role})")
            return who[0]

        return check

    def reader(request: Request) -> None:
        if api.read_requires_token:
            require("viewer")(request)

    Writer = Annotated[str, Depends(require("operator"))]

    async def document(request: Request, _: Writer) -> Any:
        """A writer's JSON body: read only once the token allows the write."""
        return await read_json(request)

    Document = Annotated[Any, Depends(document)]

    def decision_note(doc: Document) -> str:
        return validate(Decision, doc).note if doc is not None else ""

    Note = Annotated[str, Depends(decision_note)]

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidTransition)
    def _conflict(request: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(SQLAlchemyError)
    def _store_down(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the store is unavailable ({type(exc).__name__}); try again"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.middleware("http")
    async def ui_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/ui"):
            response.headers.update(UI_HEADERS)
        return response

    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        state = readiness()
        return JSONResponse(state, status_code=200 if state.get("ready") else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    Read = Annotated[None, Depends(reader)]

    @app.get("/api/v1/whoami")
    def whoami(request: Request) -> dict[str, str | None]:
        """The name and role of the presented token, so a client offers only what the role may do. No
        token is nobody; a token that matches none is refused (401). The token is never sent back."""
        if not request.headers.get("authorization"):
            return {"name": None, "role": None}
        who = identify(request)
        if who is None:
            raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
        return {"name": who[0], "role": who[1]}

    @app.get("/api/v1/incidents")
    def list_incidents(
        _: Read,
        status: IncidentStatus | None = None,
        priority: Priority | None = None,
        service: FilterText = None,
        q: FilterText = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """`q` matches part of the title, service or signature, ignoring case."""
        found = store.incidents.list(status=status, limit=limit, priority=priority, service=service, search=q)
        return [views.incident_summary(i) for i in found]

    @app.get("/api/v1/incidents/{incident_id}")
    def get_incident(incident_id: Id, _: Read) -> dict[str, Any]:
        return views.incident_detail(store, incident_id, dependencies)

    @app.get("/api/v1/incidents/{incident_id}/series")
    def incident_series(incident_id: Id, _: Read) -> dict[str, Any]:
        return charts.incident(incident_id)

    @app.post("/api/v1/incidents/{incident_id}/acknowledge")
    def acknowledge(incident_id: Id, actor: Writer, note: Note) -> dict[str, Any]:
        row = store.incidents.get(incident_id)
        if not can_become(IncidentStatus(row.status), IncidentStatus.ACKNOWLEDGED):
            raise InvalidTransition(f"incident {incident_id} is {row.status}; it cannot be acknowledged")
        item = store.inbox.put(Acknowledge(incident_id, f"api:{actor}", note or "acknowledged"), clock.now())
        wake()
        controls.applied(store, item, settle)
        return views.incident_summary(store.incidents.get(incident_id))

    class CloseBody(BaseModel):
        model_config = ConfigDict(extra="forbid")
        review: controls.ReviewRequest | None = None

    review_required = (incidents or IncidentsConfig()).review_required

    @app.post("/api/v1/incidents/{incident_id}/close")
    def close(incident_id: Id, actor: Writer, doc: Document) -> JSONResponse:
        """200 with the closed incident, 409 with why not, 202 when the leader has not answered yet."""
        body = validate(CloseBody, doc if doc is not None else {})
        row, refused = controls.close_incident(
            store, incident_id, body.review, f"api:{actor}", review_required, clock.now(), settle, wake
        )
        if refused:
            return JSONResponse({"detail": refused}, status_code=409)
        code = 200 if row.status == IncidentStatus.CLOSED else 202
        return JSONResponse(views.incident_detail(store, incident_id, dependencies), status_code=code)

    @app.post("/api/v1/alerts")
    def receive_alerts(actor: Writer, doc: Document) -> dict[str, int]:
        """Alertmanager's webhook receiver (`webhook_configs` with `http_config.authorization`). The
        alerts are stored before the answer (a 200 means they will be applied, by whichever agent
        leads); a store that cannot take them gets a 503, and Alertmanager sends them again. A payload
        refused (422) is refused whole: nothing of it is stored."""
        limits = Limits(clock.now(), api.max_alerts_per_request, max_clock_skew)
        received = validate(WebhookPayload, doc, limits).records()
        store.inbox.put(AlertsReceived(received, f"api:{actor}"), clock.now())
        wake()
        firing = sum(a.status == "firing" for a in received)
        return {"firing": firing, "resolved": len(received) - firing}

    @app.get("/api/v1/changes")
    def list_changes(
        _: Read,
        status: ChangeStatus | None = None,
        priority: Priority | None = None,
        service: FilterText = None,
        q: FilterText = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """`priority` is the incident's; `q` matches part of the runbook, rule or reason, ignoring case."""
        found = store.changes.list(status=status, limit=limit, priority=priority, service=service, search=q)
        return [views.change_view(c) for c in found]

    @app.get("/api/v1/changes/{change_id}")
    def get_change(change_id: Id, _: Read) -> dict[str, Any]:
        return views.change_view(store.changes.get(change_id))

    @app.post("/api/v1/changes/{change_id}/approve")
    def approve(change_id: Id, actor: Writer, note: Note) -> dict[str, Any]:
        change = store.changes.decide(change_id, True, f"api:{actor}", clock.now(), note)
        wake()
        return views.change_view(change)

    @app.post("/api/v1/changes/{change_id}/reject")
    def reject(change_id: Id, actor: Writer, note: Note) -> dict[str, Any]:
        change = store.changes.decide(change_id, False, f"api:{actor}", clock.now(), note)
        wake()
        return views.change_view(change)

    def request(change_id: int, kind: ChangeKind, actor: str, note: str) -> JSONResponse:
        """201 with the new change, 409 with why the agent refused, 202 when the leader has not answered
        within `settle` seconds (it will)."""
        made, refused = controls.request_change(
            store, change_id, kind, f"api:{actor}", note, clock.now(), settle, wake
        )
        if made is not None:
            return JSONResponse(views.change_view(made), status_code=201)
        if refused:
            return JSONResponse({"detail": refused}, status_code=409)
        return JSONResponse(
            {"detail": f"{kind} requested; the leader makes the change shortly"}, status_code=202
        )

    @app.post("/api/v1/changes/{change_id}/retry", status_code=201)
    def retry(change_id: Id, actor: Writer, note: Note) -> JSONResponse:
        return request(change_id, ChangeKind.RETRY, actor, note)

    @app.post("/api/v1/changes/{change_id}/rollback", status_code=201)
    def rollback(change_id: Id, actor: Writer, note: Note) -> JSONResponse:
        return request(change_id, ChangeKind.ROLLBACK, actor, note)

    add_envelope_routes(
        app, store, clock, require, reader, wake, breaker or CircuitBreaker(), services, runbooks
    )

    Admin = Annotated[str, Depends(require("admin"))]

    @app.get("/api/v1/audit")
    def audit(
        _: Admin,
        since: datetime | None = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        action: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 500,
    ) -> list[dict[str, Any]]:
        """The audit trail, newest first (admin: it names who did what)."""
        if since is not None and since.tzinfo is None:
            raise HTTPException(422, "since needs a time zone, e.g. 2026-12-01T00:00:00Z")
        return [views.audit_view(e) for e in store.audit.list(limit, since, actor, action)]

    add_problem_routes(app, store, clock, require, reader, runbooks)

    return app
