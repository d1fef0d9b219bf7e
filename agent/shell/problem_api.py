"""Problem management over HTTP: promote a candidate, record root cause and workaround (operator), read
the known errors; the same operations and answers as `aiops problems|known-errors`
(agent/shell/problem_controls.py)."""

from collections.abc import Callable, Collection
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from agent.clock import Clock
from agent.shell import problem_controls, views
from agent.shell.bodies import Id, read_json, validate
from agent.shell.store import Store
from agent.shell.store.known_errors import ProblemStatus


def add_problem_routes(
    app: FastAPI,
    store: Store,
    clock: Clock,
    require: Callable[[str], Callable[[Request], str]],
    read: Callable[[Request], None],
    runbooks: Collection[str] | None,
) -> None:
    """`require(role)` answers 401/403 before any body is read; `runbooks`, when given, are the names a
    workaround runbook may use. Unknown ids are 404, a step the problem's status does not allow 409."""
    Read = Annotated[None, Depends(read)]
    Operator = Annotated[str, Depends(require("operator"))]

    @app.get("/api/v1/problems")
    def list_problems(_: Read, status: ProblemStatus | None = None) -> list[dict[str, Any]]:
        return views.ranked_problems(store, clock.now(), status)

    @app.get("/api/v1/problems/{problem_id}")
    def get_problem(problem_id: Id, _: Read) -> dict[str, Any]:
        return views.problem_detail(store, problem_id, clock.now())

    @app.post("/api/v1/problems/{problem_id}/promote")
    async def promote(problem_id: Id, request: Request, actor: Operator) -> dict[str, Any]:
        req = validate(problem_controls.PromoteRequest, await read_json(request))
        row = problem_controls.promote(store, problem_id, req, f"api:{actor}", clock.now())
        return views.problem_detail(store, row.id or problem_id, clock.now())

    async def update(problem_id: int, request: Request, actor: str) -> dict[str, Any]:
        req = validate(problem_controls.UpdateRequest, await read_json(request))
        try:
            row = problem_controls.update(store, problem_id, req, f"api:{actor}", clock.now(), runbooks)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return views.problem_detail(store, row.id or problem_id, clock.now())

    @app.patch("/api/v1/problems/{problem_id}")
    async def patch_problem(problem_id: Id, request: Request, actor: Operator) -> dict[str, Any]:
        return await update(problem_id, request, actor)

    @app.post("/api/v1/problems/{problem_id}")
    async def post_problem(problem_id: Id, request: Request, actor: Operator) -> dict[str, Any]:
        return await update(problem_id, request, actor)

    @app.get("/api/v1/known-errors")
    def list_known_errors(_: Read) -> list[dict[str, Any]]:
        return [views.known_error_view(k) for k in store.known_errors.list()]

    @app.get("/api/v1/known-errors/{known_error_id}")
    def get_known_error(known_error_id: Id, _: Read) -> dict[str, Any]:
        return problem_controls.known_error_detail(store, known_error_id)
