"""Template mining with drain3: which kind of line is this, and is it a kind never seen before?

drain3's Drain groups lines by token count, a short prefix tree and token similarity. Three things
make one configuration work across log formats (see docs/benchmarks.md for grouping accuracy):
the header is cut off first (`HeaderStyle`), variable tokens are masked before Drain sees them
(`tokens.normalize`), and masked tokens are left out of the similarity entirely, so a long header or
many numbers neither inflate nor deflate how alike two messages are. Repeated masked messages skip
Drain through a bounded cache, which is what makes mining fast on real, repetitive logs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpickle
from drain3.drain import Drain

from detectors.logs.headers import HeaderStyle
from detectors.logs.tokens import MASK, is_unit, level_of, normalize

_WILDCARD = "<*>"


class _MaskNeutralDrain(Drain):
    """Drain whose similarity ignores positions masked in both sequences (see the module docstring)."""

    def get_seq_distance(
        self, seq1: Sequence[str], seq2: Sequence[str], include_params: bool
    ) -> tuple[float, int]:
        same = params = compared = 0
        for a, b in zip(seq1, seq2, strict=True):
            if a == MASK and b == MASK:
                continue
            compared += 1
            if a == _WILDCARD:
                params += 1
            elif a == b:
                same += 1
        return (same / compared if compared else 1.0), params


@dataclass(frozen=True)
class Match:
    """A mined line: its template id (stable across restarts), template text, level, and whether the
    template was created by this very line."""

    template_id: int
    template: str
    level: str | None
    new: bool


class LogMiner:
    """Streaming template miner for one source.

    The first `learn_lines` lines are held back until the source's header style is learnt from them;
    `add` returns the matches that became available (usually exactly the line just added).

    >>> m = LogMiner(learn_lines=2)
    >>> m.add("2024-01-01 10:00:01 INFO web: user 17 logged in", "a")
    []
    >>> [(p, x.template, x.level) for p, x in m.add("2024-01-01 10:00:02 INFO web: user 23 logged in", "b")]
    [('a', 'user <*> logged in', 'info'), ('b', 'user <*> logged in', 'info')]
    """

    def __init__(
        self, similarity: float = 0.9, depth: int = 4, learn_lines: int = 64, cache_size: int = 65536
    ):
        self.similarity, self.depth, self.learn_lines, self.cache_size = (
            similarity,
            depth,
            learn_lines,
            cache_size,
        )
        self.drain = _MaskNeutralDrain(depth=depth, sim_th=similarity, max_children=100)
        self.header = HeaderStyle()
        self._pending: list[tuple[list[str], Any]] = []
        self._tokens: dict[str, str] = {}
        self._seen: OrderedDict[str, int] = OrderedDict()

    def add(self, line: str, payload: Any = None) -> list[tuple[Any, Match]]:
        tokens = line.replace("|", " ").split()
        if self.header.style is None:
            self._pending.append((tokens, payload))
            if len(self._pending) < self.learn_lines:
                return []
            return self.flush()
        return [(payload, self._mine(tokens))]

    def flush(self) -> list[tuple[Any, Match]]:
        """Learn the header style from what is held back (however little) and mine it."""
        if not self._pending:
            return []
        if self.header.style is None:
            self.header.learn([t for t, _ in self._pending])
        pending, self._pending = self._pending, []
        return [(payload, self._mine(tokens)) for tokens, payload in pending]

    def mine_all(self, lines: Iterable[str]) -> list[Match]:
        """Offline: every line in order (used by `aiops logs parse`)."""
        out = [m for line in lines for _, m in self.add(line)]
        return out + [m for _, m in self.flush()]

    def template(self, template_id: int) -> str:
        cluster = self.drain.id_to_cluster.get(template_id)
        return _render(cluster.get_template()) if cluster is not None else ""

    def _mine(self, tokens: list[str]) -> Match:
        cut = self.header.cut(tokens)
        level = next((lv for t in tokens[:cut] if (lv := level_of(t))), None)
        message = self._normalize(tokens[cut:])
        key = " ".join(message)
        cid = self._seen.get(key)
        if cid is not None:
            self._seen.move_to_end(key)
            return Match(cid, self.template(cid), level, False)
        cluster, change = self.drain.add_log_message(key)
        self._seen[key] = cluster.cluster_id
        if len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)
        return Match(cluster.cluster_id, _render(cluster.get_template()), level, change == "cluster_created")

    def _normalize(self, tokens: Sequence[str]) -> list[str]:
        """Masked tokens; a run of masks is one mask, and a unit right after a mask joins it ("3.5 KB"),
        so optional or multi-token values do not change the token count."""
        out: list[str] = []
        cache = self._tokens
        for t in tokens:
            n = cache.get(t)
            if n is None:
                n = normalize(t)
                if len(cache) < self.cache_size:
                    cache[t] = n
            if out and out[-1] == MASK and (n == MASK or is_unit(t)):
                continue
            out.append(n)
        return out

    # ------------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state: header style and Drain's clusters, so template ids survive restarts."""
        return {
            "version": 1,
            "params": {"similarity": self.similarity, "depth": self.depth},
            "header": self.header.style,
            "drain": jsonpickle.dumps(self.drain, keys=True),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> LogMiner:
        miner = cls(**params)
        if state.get("version") != 1:
            raise ValueError(f"unsupported template state version {state.get('version')!r}")
        miner.header.style = state["header"]
        loaded = jsonpickle.loads(state["drain"], keys=True)
        if not isinstance(loaded, Drain):
            raise ValueError("template state does not hold a Drain model")
        miner.drain.id_to_cluster = loaded.id_to_cluster
        miner.drain.clusters_counter = loaded.clusters_counter
        miner.drain.root_node = loaded.root_node
        return miner


def _render(template: str) -> str:
    return template.replace(MASK, _WILDCARD)
