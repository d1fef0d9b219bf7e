"""aiops-agent: the core that turns monitoring data into incidents and verified remediations."""

__version__ = "0.1.0"
