"""Text search for the list filters of the API and UI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlmodel import col


def contains(needle: str, *columns: Any) -> ColumnElement[bool]:
    """Any of `columns` holds `needle`, in any case; a `%` or `_` in it matches only itself.

    >>> from agent.shell.store.tables import Incident
    >>> print(contains("50%", Incident.title).compile(compile_kwargs={"literal_binds": True}))
    (lower(incidents.title) LIKE '%' || lower('50/%') || '%' ESCAPE '/')
    """
    return or_(*(col(c).icontains(needle, autoescape=True) for c in columns))
