"""A real Prometheus that already holds history: generated series are written as OpenMetrics, turned
into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, and placed in the storage directory
before Prometheus starts. Tests of warm start, replay or long windows then need not wait hours.

The synthetic series look like service metrics (a per-series level, a daily cycle, multiplicative
noise, optional faults at given times) and are deterministic by seed; `SeriesExporter` serves the
same series live, so a scrape continues the backfilled history with the same labels.

    .venv/bin/python -m tests.support.backfill    # times generation + promtool, 1,000 series x 1 day at 15 s
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal, TextIO

import numpy as np
import requests

from demo.processes import ManagedProcess, StartupError, start_prometheus

Point = tuple[float, float]  # (unix seconds, value)
SeriesData = tuple[str, Mapping[str, str], Sequence[Point]]  # (metric name, labels, points in time order)
DAY = 86_400.0
BLOCK = 7200.0  # promtool writes blocks of two hours, aligned to multiples of two hours
STORAGE = "data"  # where demo.processes.start_prometheus keeps its TSDB, under its workdir
TARGET_LABELS = ("job", "instance")  # attached by Prometheus to what it scrapes


class BackfillError(RuntimeError):
    """History could not be written or turned into blocks; the message says which step and why."""


# ------------------------------------------------------------------ OpenMetrics and blocks


@dataclass(frozen=True)
class HistoryStats:
    """What was written: series and samples, first and last timestamp, metric names, the files."""

    series: int
    samples: int
    start: float
    end: float
    names: tuple[str, ...]
    files: tuple[Path, ...]


def write_openmetrics(path: Path, series: Iterable[SeriesData], block: float | None = None) -> HistoryStats:
    """Stream `series` to an OpenMetrics file for promtool, one series at a time (a day of 1,000 series
    never sits in memory at once if the iterable generates them lazily). Timestamps are in seconds.

    With `block` (seconds), each block-aligned window goes to its own file beside `path`
    (`<stem>-<window start>.om`): promtool re-reads its whole input once per block it writes, so a day
    in one file is read thirteen times, in thirteen files once each (and they build in parallel).
    """
    count = samples = 0
    start, end = math.inf, -math.inf
    names: dict[str, None] = {}
    files: dict[int, TextIO] = {}

    def out(window: int) -> TextIO:
        if window not in files:
            target = path if block is None else path.with_name(f"{path.stem}-{window * block:.0f}.om")
            files[window] = target.open("w", encoding="utf-8")
        return files[window]

    try:
        if block is None:
            out(0)
        for name, labels, points in series:
            prefix = f"{name}{{{_labels(labels)}}} " if labels else f"{name} "
            lines: list[str] = []
            first = prev = -math.inf
            window = -1
            for t, v in points:
                ts = float(t)
                if ts <= prev:
                    raise BackfillError(f"{prefix.strip()}: timestamps must increase ({ts!r} after {prev!r})")
                w = 0 if block is None else math.floor(ts / block)
                if w != window and lines:
                    out(window).write("".join(lines))
                    samples += len(lines)
                    lines = []
                if prev == -math.inf:
                    first = ts
                window, prev = w, ts
                lines.append(f"{prefix}{float(v)!r} {ts!r}\n")
            if prev == -math.inf:
                continue
            out(window).write("".join(lines))
            samples += len(lines)
            count += 1
            start = min(start, first)
            end = max(end, prev)
            names[name] = None
    finally:
        for f in files.values():
            f.write("# EOF\n")
            f.close()
    paths = tuple(Path(f.name) for _, f in sorted(files.items()))
    return HistoryStats(count, samples, start, end, tuple(names), paths)


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promtool_binary() -> str | None:
    return shutil.which("promtool") or next(
        (p for p in ("/usr/bin/promtool", "/usr/local/bin/promtool") if Path(p).exists()), None
    )


def build_blocks(openmetrics_file: Path | Sequence[Path], storage_dir: Path) -> list[Path]:
    """Turn OpenMetrics file(s) into TSDB blocks inside `storage_dir` (one promtool per file, as many at
    once as there are CPUs); returns the new block directories. Start Prometheus on `storage_dir`
    afterwards: it loads blocks at startup, not while it runs."""
    binary = promtool_binary()
    if binary is None:
        raise BackfillError("promtool is not installed (Debian: apt-get install prometheus)")
    inputs = [openmetrics_file] if isinstance(openmetrics_file, Path) else list(openmetrics_file)
    storage_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".promtool-", dir=storage_dir.parent))

    def run(i: int) -> None:
        done = subprocess.run(
            [
                binary,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(inputs[i]),
                str(staging / str(i)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BackfillError(f"promtool failed ({done.returncode}) on {inputs[i]}:\n{done.stderr[-2000:]}")

    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(run, range(len(inputs))))
        blocks = [b.rename(storage_dir / b.name) for b in sorted(staging.glob("*/*")) if b.is_dir()]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(blocks)


@dataclass
class BackfilledPrometheus:
    """A running Prometheus whose storage held `history` before it started."""

    proc: ManagedProcess
    url: str
    history: HistoryStats
    blocks: list[Path]

    def stop(self) -> None:
        self.proc.stop()


def start_prometheus_with_history(
    workdir: Path,
    series: Iterable[SeriesData],
    scrape_targets: dict[str, list[str]] | None = None,
    scrape_interval: str = "1s",
    timeout: float = 60.0,
) -> BackfilledPrometheus:
    """Write `series` as blocks into a fresh storage directory under `workdir`, then start Prometheus
    there (scraping `scrape_targets`, {job: [host:port]}, if any). Returns once the history answers
    queries and every job has been scraped once.

    The history must end before now: Prometheus accepts scraped samples only after its newest block.
    The OpenMetrics files are deleted once the blocks are built (`history.files` names them).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / STORAGE
    if storage.exists() and any(storage.iterdir()):
        raise BackfillError(f"{storage} is not empty: history goes into a fresh storage directory")
    try:
        stats = write_openmetrics(workdir / "history.om", series, block=BLOCK)
        if not stats.samples:
            raise BackfillError("no samples to backfill")
        if stats.end >= time.time():
            raise BackfillError(f"history ends in the future ({stats.end:.3f}); it must end before now")
        blocks = build_blocks(stats.files, storage)
    finally:
        for f in workdir.glob("history*.om"):
            f.unlink()
    proc, url = start_prometheus(
        workdir, scrape_targets or {}, scrape_interval=scrape_interval, timeout=timeout
    )
    try:
        _check_history(url, stats)
    except BaseException:
        proc.stop()
        raise
    return BackfilledPrometheus(proc, url, stats, blocks)


def _check_history(url: str, stats: HistoryStats) -> None:
    """The newest backfilled sample answers an instant query at its own time (blocks were loaded)."""
    selector = "|".join(stats.names)
    r = requests.get(
        f"{url}/api/v1/query",
        params={"query": f'count({{__name__=~"{selector}"}})', "time": f"{stats.end:.3f}"},
        timeout=10,
    )
    r.raise_for_status()
    result = r.json()["data"]["result"]
    if not result or int(float(result[0]["value"][1])) < 1:
        raise StartupError(
            f"Prometheus at {url} started without the backfilled history (no series at {stats.end})"
        )


# ------------------------------------------------------------------ synthetic series


@dataclass(frozen=True)
class Fault:
    """From `at` (unix seconds) the value is multiplied by 1 + `size`: for good (a step) or for
    `duration` seconds (a spike). size=2.0 triples the value; -0.5 halves it."""

    at: float
    size: float
    kind: Literal["step", "spike"] = "step"
    duration: float = 60.0

    def mask(self, ts: np.ndarray) -> np.ndarray:
        hit = ts >= self.at
        return hit & (ts < self.at + self.duration) if self.kind == "spike" else hit


@dataclass(frozen=True)
class SyntheticSeries:
    """level x (1 + amplitude x sin(daily phase)) x lognormal noise, with faults applied on top.

    >>> s = SyntheticSeries("x", {"instance": "a"}, level=2.0, amplitude=0.0, phase=0.0, noise=0.0,
    ...                     faults=(Fault(at=10.0, size=1.0),))
    >>> s.values(np.array([0.0, 10.0]), np.random.default_rng(0)).tolist()
    [2.0, 4.0]
    """

    name: str
    labels: Mapping[str, str]
    level: float
    amplitude: float
    phase: float
    noise: float
    faults: tuple[Fault, ...] = ()

    def values(self, ts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cycle = 1.0 + self.amplitude * np.sin(2 * np.pi * ts / DAY + self.phase)
        v = self.level * cycle * np.exp(self.noise * rng.standard_normal(len(ts)))
        for f in self.faults:
            v = np.where(f.mask(ts), v * (1.0 + f.size), v)
        return v

    def with_fault(self, fault: Fault) -> SyntheticSeries:
        return replace(self, faults=(*self.faults, fault))


def synthetic_series(
    name: str,
    label_sets: Sequence[Mapping[str, str]],
    seed: int,
    faults: Mapping[int, Sequence[Fault]] | None = None,
    level: tuple[float, float] = (0.05, 0.5),
) -> list[SyntheticSeries]:
    """One series per label set, with a level drawn log-uniformly from `level`, a daily swing of
    10-40% at a random phase and 2-6% noise; `faults` maps a label set's index to its faults."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log(level[0]), np.log(level[1])
    faults = faults or {}
    return [
        SyntheticSeries(
            name,
            dict(labels),
            level=float(np.exp(rng.uniform(lo, hi))),
            amplitude=float(rng.uniform(0.1, 0.4)),
            phase=float(rng.uniform(0, 2 * np.pi)),
            noise=float(rng.uniform(0.02, 0.06)),
            faults=tuple(faults.get(i, ())),
        )
        for i, labels in enumerate(label_sets)
    ]


def generate(
    series: Iterable[SyntheticSeries], start: float, end: float, step: float, seed: int = 0
) -> Iterator[SeriesData]:
    """Points of each series on the grid start, start + step, ... <= end, one series at a time; the
    noise of series i depends only on (seed, i), so a subset or a longer range stays reproducible."""
    ts = start + step * np.arange(math.floor((end - start) / step) + 1)
    for i, s in enumerate(series):
        rng = np.random.default_rng([seed, i])
        yield s.name, s.labels, list(zip(ts.tolist(), s.values(ts, rng).tolist(), strict=True))


# ------------------------------------------------------------------ the live continuation


@dataclass
class SeriesExporter:
    """Serves synthetic series at the current time on http://127.0.0.1:port/metrics, so Prometheus'
    scrapes continue their backfilled history. Prometheus attaches `job` and `instance` itself: each
    series' `instance` label must be this exporter's address (bind first, then `publish`)."""

    server: ThreadingHTTPServer
    series: list[SyntheticSeries] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, seed: int = 0) -> SeriesExporter:
        exporter: SeriesExporter

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render(time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        exporter = cls(ThreadingHTTPServer(("127.0.0.1", 0), Handler), rng=np.random.default_rng(seed))
        threading.Thread(target=exporter.server.serve_forever, daemon=True).start()
        return exporter

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def publish(self, series: Sequence[SyntheticSeries]) -> None:
        for s in series:
            if s.labels.get("instance", self.address) != self.address:
                raise ValueError(
                    f"{s.labels}: instance must be {self.address}, the label Prometheus attaches"
                )
        with self.lock:
            self.series = list(series)

    def inject(self, index: int, fault: Fault) -> None:
        with self.lock:
            self.series[index] = self.series[index].with_fault(fault)

    def render(self, now: float) -> str:
        with self.lock:
            lines = []
            for s in self.series:
                labels = {k: v for k, v in s.labels.items() if k not in TARGET_LABELS}
                value = float(s.values(np.array([now]), self.rng)[0])
                lines.append(
                    f"{s.name}{{{_labels(labels)}}} {value!r}\n" if labels else f"{s.name} {value!r}\n"
                )
        return "".join(lines)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ timing


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--step", type=float, default=15.0)
    p.add_argument(
        "--one-file", action="store_true", help="one OpenMetrics file (promtool reads it per block)"
    )
    p.add_argument("--start", action="store_true", help="also start Prometheus on the blocks and query them")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="backfill-") as tmp:
        workdir = Path(tmp)
        end = math.floor(time.time() / args.step) * args.step - args.step
        start = end - args.hours * 3600
        labels = [{"job": "bench", "instance": f"10.0.{i // 250}.{i % 250}:9100"} for i in range(args.series)]
        series = synthetic_series("svc_latency_seconds", labels, seed=1)
        t0 = time.perf_counter()
        stats = write_openmetrics(
            workdir / "history.om",
            generate(series, start, end, args.step, seed=1),
            None if args.one_file else BLOCK,
        )
        t1 = time.perf_counter()
        blocks = build_blocks(stats.files, workdir / STORAGE)
        t2 = time.perf_counter()
        size = sum(f.stat().st_size for f in stats.files)
        print(
            f"{stats.series} series x {args.hours:g} h at {args.step:g} s = {stats.samples:,} samples, "
            f"{size / 1e6:.0f} MB of OpenMetrics in {len(stats.files)} file(s)\n"
            f"generate + write: {t1 - t0:.1f} s\n"
            f"promtool ({len(blocks)} blocks, up to {os.cpu_count()} at a time): {t2 - t1:.1f} s\n"
            f"total: {t2 - t0:.1f} s"
        )
        if args.start:
            for f in stats.files:
                f.unlink()
            t3 = time.perf_counter()
            proc, url = start_prometheus(workdir, {})
            t4 = time.perf_counter()
            try:
                _check_history(url, stats)
                r = requests.get(
                    f"{url}/api/v1/query",
                    params={
                        "query": f"sum(count_over_time(svc_latency_seconds[{args.hours:g}h]))",
                        "time": str(end),
                    },
                    timeout=60,
                )
                seen = r.json()["data"]["result"][0]["value"][1]
                print(
                    f"Prometheus started on the blocks in {t4 - t3:.1f} s; it holds {int(seen):,} samples of them"
                )
            finally:
                proc.stop()


if __name__ == "__main__":
    main()
