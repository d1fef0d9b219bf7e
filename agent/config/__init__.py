"""Configuration: YAML files validated into typed models in two stages (schema, then cross-references)."""

from agent.config.bundle import Config
from agent.config.loader import load_config

__all__ = ["Config", "load_config"]
