"""The imperative shell around the core: scheduler and polls, the owner loop, the store, leadership,
remediation, notifications, the HTTP API and replay. It turns the world into events and decisions
into effects."""
