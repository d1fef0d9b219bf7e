"""Per-series state held in arrays, one row ("slot") per series, so one tick updates every series at once.

A component declares its fields once; `Slots` grows them as series arrive and resets the rows of
series that are gone. This is what makes the hot path one numpy operation per field per tick instead
of one Python object per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Field:
    name: str
    shape: tuple[int, ...] = ()
    dtype: type = np.float64
    init: float = 0.0


class Slots:
    """Base for components whose state is a set of `Field` arrays with one row per series."""

    def fields(self) -> list[Field]:
        raise NotImplementedError

    def children(self) -> list[Slots]:
        """Components this one is built from; they grow and reset with it."""
        return []

    def allocate(self, n: int) -> None:
        for f in self.fields():
            setattr(self, f.name, np.full((n, *f.shape), f.init, dtype=f.dtype))

    def grow(self, n: int) -> None:
        """Make room for `n` series in total, keeping the state of the existing ones."""
        for f in self.fields():
            old = getattr(self, f.name)
            if old.shape[0] >= n:
                continue
            new: np.ndarray = np.full((n, *f.shape), f.init, dtype=f.dtype)
            new[: old.shape[0]] = old
            setattr(self, f.name, new)
        for child in self.children():
            child.grow(n)

    def reset(self, rows: np.ndarray) -> None:
        """Forget the series in `rows` (their slots can be reused by new series)."""
        for f in self.fields():
            getattr(self, f.name)[rows] = f.init
        for child in self.children():
            child.reset(rows)

    def nbytes_per_series(self) -> int:
        total = 0
        for f in self.fields():
            arr = getattr(self, f.name)
            total += arr.nbytes // max(arr.shape[0], 1)
        return total + sum(child.nbytes_per_series() for child in self.children())
