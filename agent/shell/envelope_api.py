"""The safety envelope over HTTP: silences (operator) and the kill switch (admin), the same operations
and answers as `aiops silences` and `aiops automation` (agent/shell/controls.py)."""

from collections.abc import Callable, Collection
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request

from agent.clock import Clock
from agent.config.models import CircuitBreaker
from agent.shell import controls
from agent.shell.bodies import Id, read_json, validate
from agent.shell.store import Store


def add_envelope_routes(
    app: FastAPI,
    store: Store,
    clock: Clock,
    require: Callable[[str], Callable[[Request], str]],
    read: Callable[[Request], None],
    wake: Callable[[], None],
    breaker: CircuitBreaker,
    services: Collection[str] | None,
    runbooks: Collection[str] | None,
) -> None:
    """`require(role)` answers 401/403 before any body is read; `read` guards reads as the other lists."""
    Read = Annotated[None, Depends(read)]
    Operator = Annotated[str, Depends(require("operator"))]
    Admin = Annotated[str, Depends(require("admin"))]

    @app.get("/api/v1/silences")
    def list_silences(_: Read, all: bool = False) -> list[dict[str, Any]]:
        now = clock.now()
        return [controls.silence_view(r, now) for r in store.silences.list(now, include_ended=all)]

    @app.post("/api/v1/silences", status_code=201)
    async def add_silence(request: Request, actor: Operator) -> dict[str, Any]:
        req = validate(controls.SilenceRequest, await read_json(request))
        try:
            row = controls.add_silence(store, req, f"api:{actor}", clock.now())
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        wake()
        return controls.silence_view(row, clock.now())

    @app.delete("/api/v1/silences/{silence_id}")
    def expire_silence(silence_id: Id, actor: Operator) -> dict[str, Any]:
        row = store.silences.expire(silence_id, f"api:{actor}", clock.now())
        wake()
        return controls.silence_view(row, clock.now())

    @app.get("/api/v1/automation")
    def automation(_: Read) -> dict[str, Any]:
        return controls.automation_status(store, breaker, clock.now(), services or ())

    async def _switch(kind: Literal["pause", "resume"], request: Request, actor: str) -> dict[str, Any]:
        req = validate(controls.SwitchRequest, await read_json(request) or {})
        try:
            controls.switch(store, kind, req, f"api:{actor}", clock.now(), services, runbooks)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        wake()
        return controls.automation_status(store, breaker, clock.now(), services or ())

    @app.post("/api/v1/automation/pause")
    async def pause(request: Request, actor: Admin) -> dict[str, Any]:
        return await _switch("pause", request, actor)

    @app.post("/api/v1/automation/resume")
    async def resume(request: Request, actor: Admin) -> dict[str, Any]:
        return await _switch("resume", request, actor)
