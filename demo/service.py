"""A small web service that simulates its own traffic and can be driven into a fault state.

It exposes Prometheus metrics (request latency histogram, request counter by status code) and two
control endpoints on loopback: `POST /fault` (workers get stuck: slow, failing requests) and
`POST /admin/recycle` (what an operator, or the agent's runbook, does to repair it).
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DemoService:
    def __init__(self, rps: float = 50.0, seed: int | None = None, log_file: str | None = None):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "demo_request_duration_seconds", "Request latency.", buckets=BUCKETS, registry=self.registry
        )
        self.requests = Counter(
            "demo_requests", "Requests served, by status code.", ["code"], registry=self.registry
        )
        for code in ("200", "500"):
            self.requests.labels(code=code)
        self.fault_gauge = Gauge(
            "demo_fault_active", "1 while the workers are stuck.", registry=self.registry
        )
        self.recycles = Counter("demo_worker_recycles", "Worker pool recycles.", registry=self.registry)
        self.rps = rps
        self.rng = random.Random(seed)
        self.fault = False
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.log = RequestLog(log_file) if log_file else None

    def simulate(self) -> None:
        """Record synthetic requests at a steady rate, slow and failing while faulted."""
        period = 1.0 / self.rps
        while not self.stop.wait(period):
            with self.lock:
                fault = self.fault
            if fault:
                seconds = self.rng.uniform(1.2, 2.0)
                code = "500" if self.rng.random() < 0.3 else "200"
            else:
                seconds = max(0.005, self.rng.gauss(0.06, 0.008))
                code = "500" if self.rng.random() < 0.001 else "200"
            self.latency.observe(seconds)
            self.requests.labels(code=code).inc()
            if self.log is not None:
                worker = self.rng.randrange(8)
                path = self.rng.choice(("/api/items", "/api/cart", "/api/checkout"))
                # Every request gets an access line; stuck workers also log an error line of their own
                # (a rare healthy 500 is only an access line, so a calm log holds no error template).
                ms = int(seconds * 1000)
                self.log.write("INFO", f"[worker-{worker}] demo.web: GET {path} {code} {ms}ms")
                if fault and code == "500":
                    self.log.write(
                        "ERROR",
                        f"[worker-{worker}] demo.web: request {path} failed: worker pool stuck, "
                        f"upstream timeout after {ms}ms",
                    )
        if self.log is not None:
            self.log.close()

    def set_fault(self, on: bool) -> None:
        with self.lock:
            self.fault = on
        self.fault_gauge.set(1 if on else 0)
        if not on:
            self.recycles.inc()


class RequestLog:
    """A request log in a classic `date time LEVEL [thread] component: message` format, one line per
    write (no logging-module handler: several services in one test process must not share one)."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close()

    def write(self, level: str, message: str) -> None:
        now = datetime.now()
        self._file.write(f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d} {level} {message}\n")

    def close(self) -> None:
        self._file.close()


def make_handler(svc: DemoService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(svc.registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/state"):
                self._send(200, json.dumps({"fault": svc.fault}).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            if self.path == "/fault":
                svc.set_fault(True)
                self._send(200, b'{"fault": true}')
            elif self.path == "/admin/recycle":
                svc.set_fault(False)
                self._send(200, b'{"fault": false, "recycled": true}')
            else:
                self._send(404, b'{"error": "not found"}')

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--rps", type=float, default=50.0)
    p.add_argument("--log", help="write a request log to this file")
    args = p.parse_args()
    svc = DemoService(rps=args.rps, log_file=args.log)
    threading.Thread(target=svc.simulate, daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(svc))
    host, port = server.server_address[:2]
    print(f"demo service listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        svc.stop.set()
        server.server_close()


if __name__ == "__main__":
    main()
