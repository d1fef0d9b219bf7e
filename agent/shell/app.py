"""The one place where the agent is assembled from its config, started and stopped.

Every agent serves the API and UI from the store. One agent at a time leads (polls, decides,
remediates): it holds the store's lease; the others stand by and take over when it lapses. On SQLite
there is exactly one agent per file, and it leads.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agent.clock import Clock, SystemClock
from agent.config import Config
from agent.config.secrets import secrets_of
from agent.errors import AiopsError
from agent.shell.api import create_app
from agent.shell.health import SourceHealth
from agent.shell.leader import Leader
from agent.shell.leadership import LeaseLock, SqliteLock
from agent.shell.metrics import AgentMetrics
from agent.shell.series import SeriesReader
from agent.shell.store import Store
from agent.shell.store.fence import Fence
from integrations.ansible import sweep_run_dirs
from integrations.prometheus import PrometheusClient
from integrations.redaction import Redactor, redact_url

log = logging.getLogger("aiops")
CHART_TIMEOUT = 5.0


def prometheus_client(
    config: Config, retries: int | None = None, timeout: float | None = None
) -> PrometheusClient:
    p = config.agent.prometheus
    return PrometheusClient(
        p.url,
        timeout=p.timeout.total_seconds() if timeout is None else timeout,
        retries=p.retries if retries is None else retries,
        backoff=p.backoff.total_seconds(),
        headers={k: v.get_secret_value() for k, v in p.headers.items()},
    )


def chart_reader(config: Config, store: Store, clock: Clock) -> SeriesReader:
    """Charts are read while a person waits, from any replica: one attempt of at most CHART_TIMEOUT,
    on a client of their own, so a Prometheus in trouble costs the page seconds, not minutes."""
    a = config.agent
    timeout = min(a.prometheus.timeout.total_seconds(), CHART_TIMEOUT)
    return SeriesReader(
        store,
        clock,
        {q.name: q for q in a.queries},
        prometheus_client(config, retries=0, timeout=timeout),
        a.prometheus.step,
    )


def sqlite_lock(url: str) -> SqliteLock | None:
    """The lock that keeps a second agent off an SQLite file (None for other stores)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # Store.open reports a malformed URL
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return SqliteLock(database)


class AgentApp:
    """Owns every long-lived part: the store, the API server, the lease, and the leader's parts."""

    def __init__(self, config: Config, clock: Clock | None = None, registry: CollectorRegistry | None = None):
        a = config.agent
        self.config = config
        self.redactor = Redactor(secrets_of(config))
        self.redactor.install()  # before anything logs: no log line shows a configured secret
        self.clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry()
        self.metrics = AgentMetrics(self.registry)
        # One agent per SQLite file, checked before the store is even opened (or migrated).
        self._file_lock = sqlite_lock(a.store.url)
        if self._file_lock is not None:
            self._file_lock.acquire()
        try:
            self.store = Store.open(a.store.url)
        except BaseException:
            if self._file_lock is not None:
                self._file_lock.release()
            raise
        self.health = SourceHealth()
        self.prometheus = prometheus_client(config)
        self.lease = LeaseLock(self.store.engine, a.ha.lease_ttl, self.clock, exclusive=self.store.sqlite)
        self.leader: Leader | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._started = False

    # ------------------------------------------------------------------ leadership

    def lead(self, inline: bool = False) -> Leader:
        """Take the lease and start leading now (what the leadership loop does once it wins the lease;
        tests and the first SQLite start call it directly). `inline`: no threads, the caller drives."""
        fence = self.lease.try_acquire()
        if fence is None:
            raise AiopsError(f"the lease is held by {self.lease.read().holder}")
        return self._become(fence, inline)

    def _become(self, fence: Fence, inline: bool = False) -> Leader:
        try:
            leader = Leader(self, fence, inline=inline)
            leader.start()
        except BaseException:
            self.lease.release()
            raise
        self.leader = leader
        self.metrics.leader.set(1)
        return leader

    def lost(self, why: str) -> None:
        """Called from the core's owner when a write was fenced: another agent leads."""
        log.error("leadership lost: %s", why)
        self._lost.set()

    def _step_down(self, why: str) -> None:
        leader, self.leader = self.leader, None
        self.metrics.leader.set(0)
        if leader is None:
            return
        log.warning("stepping down: %s", why)
        leader.stop()

    def _lead_loop(self) -> None:
        ttl = self.lease.ttl
        while not self._stop.is_set():
            try:
                self._lead_turn()
            except SQLAlchemyError as e:
                log.error("store unreachable for the lease (%s)", type(e).__name__)
                if self.leader is not None and not self.lease.valid():
                    self._step_down("the lease could not be renewed within its TTL")
            except AiopsError as e:
                log.error("could not lead: %s", e)
            self._stop.wait(ttl / 3 if self.leader is not None else min(1.0, ttl / 5))

    def _lead_turn(self) -> None:
        if self._lost.is_set():
            self._lost.clear()
            self._step_down("another agent holds the lease")
            return
        if self.leader is None:
            fence = self.lease.try_acquire()
            if fence is not None:
                self._become(fence)
            return
        if not self.lease.renew():
            self._step_down("another agent took the lease")

    # ------------------------------------------------------------------ readiness

    def _shown_readiness(self) -> dict[str, Any]:
        """What /readyz serves, unauthenticated: source errors may quote a URL or a header."""
        return dict(self.redactor.value(self.readiness()))

    def readiness(self) -> dict[str, Any]:
        store_ok = self.store.ping()
        leader = self.leader
        role = "leader" if leader is not None else "standby"
        sources = self.health.snapshot() if leader is not None else {}
        ready = self._started and store_ok and (leader is None or leader.running)
        degraded = any(s["up"] is False for s in sources.values())
        holder = self.lease.read() if store_ok else None
        return {
            "ready": ready,
            "status": "not ready" if not ready else ("degraded" if degraded else "ok"),
            "role": role,
            "leader": holder.holder if holder is not None else None,
            "epoch": holder.epoch if holder is not None else None,
            "identity": self.lease.identity,
            "store": store_ok,
            "scheduler": leader.running if leader is not None else False,
            "dry_run": self.config.dry_run,
            "sources": sources,
            "remediations_in_flight": leader.executor.busy if leader is not None else 0,
        }

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        a = self.config.agent
        log.info(
            "aiops agent starting: %d queries, %d rules, store %s, prometheus %s%s",
            len(a.queries),
            len(self.config.rules),
            redact_url(a.store.url),
            redact_url(a.prometheus.url),
            " (dry-run: remediations are recorded, not executed)" if a.dry_run else "",
        )
        self._record_config()
        # Run directories a crashed agent left behind (ones in use by other agents are locked).
        sweep_run_dirs(Path(a.remediation.data_dir) if a.remediation.data_dir else None)
        try:
            if a.api.enabled:
                self._start_api()
            if self.store.sqlite:
                self.lead()
            else:
                log.info("lease TTL %s; %s", a.ha.lease_ttl, "waiting for the lease (standby until then)")
            self._thread = threading.Thread(target=self._lead_loop, name="aiops-lease", daemon=True)
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        gc.freeze()  # what was built so far lives as long as the agent: keep it out of every collection
        gc.set_threshold(100_000, 50, 1000)  # polls allocate many short-lived objects in bursts
        self._started = True

    def _record_config(self) -> None:
        """The audit log says which configuration each agent ran with and what changed since the last
        start (a restart is how a configuration is reloaded): file digests, never contents."""
        digests = {
            name: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            for name, path in self.config.files.items()
        }
        last = self.store.audit.last("config.load")
        before = (last.details.get("files") or {}) if last is not None else {}
        changed = sorted(n for n in digests.keys() | before.keys() if digests.get(n) != before.get(n))
        details = {
            "files": digests,
            "changed": changed if last is not None else [],
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "dry_run": self.config.dry_run,
        }
        self.store.audit.record(
            self.clock.now(), "agent", "config.load", str(self.config.agent_file), details
        )
        if last is not None and changed:
            log.info("configuration changed since the last start: %s", ", ".join(changed))

    def _start_api(self) -> None:
        api = self.config.agent.api
        host, _, port = api.listen.rpartition(":")
        app = create_app(
            self.store,
            self.registry,
            api,
            self.clock,
            self._shown_readiness,
            wake=self._wake,
            alerts=self.config.agent.alerts,
            breaker=self.config.agent.remediation.circuit_breaker,
            services={s.name for s in self.config.services.services},
            runbooks=set(self.config.catalog.runbooks),
            incidents=self.config.agent.incidents,
            series=chart_reader(self.config, self.store, self.clock),
            dependencies=[(s.name, d) for s in self.config.services.services for d in s.depends_on],
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

    def _wake(self) -> None:
        leader = self.leader
        if leader is not None:
            leader.runtime.wake()

    def stop(self) -> None:
        """Stop leading (running remediations finish or are cancelled after the grace period, the lease
        is released so a standby takes over at once), stop the API, close the store."""
        if self._started:
            log.info("aiops agent stopping")
        self._started = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._step_down("the agent is stopping")
        try:
            self.lease.release()
        except SQLAlchemyError as e:
            log.warning(
                "could not release the lease (%s); a standby takes over when it lapses", type(e).__name__
            )
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
            self._server = None
        if self._file_lock is not None:
            self._file_lock.release()
        self.store.close()
        log.info("aiops agent stopped")

    def request_stop(self, *_: Any) -> None:
        self._stop_requested.set()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT (Ctrl-C), then stop cleanly."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        try:
            while not self._stop_requested.wait(1.0):
                pass
        finally:
            self.stop()
