"""One root exception for the package; subclasses say what the user should do."""

from __future__ import annotations

from dataclasses import dataclass


class AiopsError(Exception):
    """Root of every error the agent raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one config file, located precisely enough to fix without guessing."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        if not self.line:  # about the file as a whole (it is missing or unreadable)
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ConfigError(AiopsError):
    """The configuration is not usable; every issue found is listed, not only the first."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class StoreError(AiopsError):
    """The incident store cannot be used as it is (unreachable, or a schema newer than this agent)."""


class StateError(AiopsError):
    """State the agent saved for itself (a log source's position or templates) cannot be read back."""


class NotFound(AiopsError):
    """A record the user named does not exist."""


class InvalidTransition(AiopsError):
    """A lifecycle change that the record's current state does not allow (e.g. approving a rejected change)."""
