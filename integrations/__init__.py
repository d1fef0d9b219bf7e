"""The outside world: Prometheus, Ansible, notification sinks. Nothing here imports `agent`."""
