"""The validated configuration as one object, with the lookups the rest of the agent needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent.config.models import (
    AgentConfig,
    Catalog,
    QueryConfig,
    Rule,
    RunbookSpec,
    Service,
    ServicesFile,
)


@dataclass(frozen=True)
class Config:
    """agent.yaml plus the files it references, all validated; paths are absolute."""

    agent: AgentConfig
    services: ServicesFile
    rules: list[Rule]
    catalog: Catalog
    agent_file: Path
    catalog_file: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.agent.dry_run

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services.services if s.name == name), None)

    def runbook(self, name: str) -> RunbookSpec:
        return self.catalog.runbooks[name]

    def playbook_path(self, playbook: str) -> Path:
        """Catalog playbook paths are relative to the catalog file."""
        return (self.catalog_file.parent / playbook).resolve()

    @property
    def state_dir(self) -> Path:
        """Where log positions and templates are kept (relative paths are relative to agent.yaml)."""
        return (self.agent_file.parent / self.agent.state_dir).resolve()

    def query(self, name: str) -> QueryConfig | None:
        return next((q for q in self.agent.queries if q.name == name), None)

    def warmup_seconds(self, query: QueryConfig) -> float:
        """How much of a query's past its detectors learn from first (none for static thresholds)."""
        return self.agent.detection.warmup_history.total_seconds() if query.detector else 0.0
