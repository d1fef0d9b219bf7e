"""The one place where the agent is assembled from its config, started and stopped."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from agent.api import create_app
from agent.clock import Clock, SystemClock
from agent.config import Config
from agent.errors import AiopsError
from agent.health import SourceHealth
from agent.logsources import build_source
from agent.metrics import AgentMetrics
from agent.notifier import Notifier
from agent.runtime import Agent
from agent.scheduler import build_scheduler
from agent.store import Store
from agent.store.engine import redact_db_url
from integrations.ansible import AnsibleRunner
from integrations.logs.records import LogSource
from integrations.notify import SINKS
from integrations.prometheus import PrometheusClient

log = logging.getLogger("aiops")


class AgentApp:
    """Owns every long-lived part: store, scheduler, remediation pool, notifier and API server."""

    def __init__(self, config: Config, clock: Clock | None = None, registry: CollectorRegistry | None = None):
        a = config.agent
        self.config = config
        self.clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = AgentMetrics(self.registry)
        self.store = Store.open(a.store.url)
        self.sources: list[LogSource] = []
        try:
            self._build(config)
        except BaseException:
            self._close()
            raise
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False

    def _build(self, config: Config) -> None:
        a = config.agent
        self.health = SourceHealth()
        p = a.prometheus
        self.prometheus = PrometheusClient(
            p.url,
            timeout=p.timeout.total_seconds(),
            retries=p.retries,
            backoff=p.backoff.total_seconds(),
            headers={k: v.get_secret_value() for k, v in p.headers.items()},
        )
        routes = [
            (
                SINKS[n.type](n.name, n.url.get_secret_value(), timeout=n.timeout.total_seconds()),
                frozenset(n.events),
            )
            for n in a.notifications
        ]
        self.notifier = Notifier(routes, self.metrics)
        data_dir = Path(a.remediation.data_dir) if a.remediation.data_dir else None
        base = config.agent_file.parent
        for ls in a.log_sources:
            self.sources.append(build_source(ls, base, config.state_dir))
        self.agent = Agent(
            config,
            self.store,
            self.prometheus,
            AnsibleRunner(data_dir),
            self.notifier,
            self.metrics,
            self.clock,
            self.health,
            list(zip(a.log_sources, self.sources, strict=True)),
        )
        self.scheduler = build_scheduler(self.agent, config)

    def readiness(self) -> dict[str, Any]:
        store_ok = self.store.ping()
        sources = self.health.snapshot()
        ready = self._started and store_ok and self.scheduler.running
        degraded = any(s["up"] is False for s in sources.values())
        return {
            "ready": ready,
            "status": "not ready" if not ready else ("degraded" if degraded else "ok"),
            "store": store_ok,
            "scheduler": self.scheduler.running,
            "dry_run": self.config.dry_run,
            "sources": sources,
            "remediations_in_flight": self.agent.remediator.busy,
        }

    def start(self) -> None:
        a = self.config.agent
        log.info(
            "aiops agent starting: %d queries, %d rules, store %s, prometheus %s%s",
            len(a.queries),
            len(self.config.rules),
            redact_db_url(a.store.url),
            a.prometheus.url,
            " (dry-run: remediations are recorded, not executed)" if a.dry_run else "",
        )
        self.agent.recover()
        self.notifier.start()
        if a.api.enabled:
            self._start_api()
        self.scheduler.start()
        self._started = True

    def _start_api(self) -> None:
        api = self.config.agent.api
        host, _, port = api.listen.rpartition(":")
        app = create_app(
            self.store,
            self.registry,
            api,
            self.clock,
            self.readiness,
            on_approved=self.agent.remediator.submit,
            on_acknowledge=self.agent.acknowledge,
            on_alerts=self.agent.receive_alerts,
        )
        config = uvicorn.Config(
            app, host=host.strip("[]"), port=int(port), log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=self._server.run, name="aiops-api", daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                raise AiopsError(f"API server could not listen on {api.listen} (port in use? set api.listen)")
            time.sleep(0.02)
        log.info("API listening on http://%s", api.listen)

    def stop(self) -> None:
        """Stop polling, let running remediations finish or cancel them after the grace period, then close."""
        if not self._started:
            self._close()
            return
        self._started = False
        log.info("aiops agent stopping")
        self.scheduler.shutdown(wait=True)
        self.agent.remediator.shutdown(self.config.agent.remediation.shutdown_grace)
        self.notifier.stop()
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
        self._close()
        log.info("aiops agent stopped")

    def _close(self) -> None:
        for source in self.sources:
            source.close()
        self.store.close()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT (Ctrl-C), then stop cleanly."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
