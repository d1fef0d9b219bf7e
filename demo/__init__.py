"""The self-contained demo: a faultable service, a real Prometheus and the agent, on loopback."""
