"""JSON request bodies for the API, read and parsed under limits.

FastAPI reads a declared body before it solves dependencies, so an unauthenticated client could make
the agent read and parse anything it sends. The API's write endpoints therefore read their body here,
in a dependency that runs after the token check; the app's `max_body_size` stops the read itself at
`api.max_body` bytes (Content-Length or counted while streaming). The parser rejects what the store
could not keep (lone surrogates, invalid UTF-8, NaN) and the nesting depth is bounded.
"""

from __future__ import annotations

from email.message import Message
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

MAX_DEPTH = 32  # an Alertmanager payload is 4 deep
# Store ids are 64-bit; a larger one in a path is a client error, not an overflow in the driver.
Id = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
M = TypeVar("M", bound=BaseModel)


def depth_exceeds(doc: Any, limit: int) -> bool:
    """True when `doc` nests lists and objects more than `limit` deep; walked without recursion.

    >>> doc = {"a": [1, {"b": []}]}  # four levels
    >>> depth_exceeds(doc, 4), depth_exceeds(doc, 3)
    (False, True)
    """
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth == limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, whatever its parameters (charset)."""
    message = Message()
    message["content-type"] = content_type or ""
    kind = message.get_content_type()  # lower case, without parameters; text/plain when unparseable
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def read_json(request: Request) -> Any:
    """The body as parsed JSON, None when there is none; 415, 422 or (from the app's limit) 413 otherwise."""
    raw = await request.body()
    if not raw:
        return None
    if not _is_json(request.headers.get("content-type")):
        raise HTTPException(415, "the body must be JSON (Content-Type: application/json)")
    try:
        doc = from_json(raw, allow_inf_nan=False)
    except ValueError as e:
        raise HTTPException(422, f"the body is not valid JSON: {e}") from None
    if depth_exceeds(doc, MAX_DEPTH):
        raise HTTPException(422, f"the body nests JSON more than {MAX_DEPTH} levels deep")
    return doc


def validate(model: type[M], doc: Any, context: Any = None) -> M:
    """`doc` as `model`, or the same 422 FastAPI gives a declared body that does not validate."""
    try:
        return model.model_validate(doc, context=context)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in errors]) from None
