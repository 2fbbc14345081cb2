"""Throughput and latency under concurrent load: N client threads, each sending
requests in a closed loop (the next as soon as its last one is answered).

What a request is stays outside: `measure_concurrency(factory, N)` calls `factory()`
once in each client thread and times the callable it returns, so the same code times
a Triton server (one TritonPoseClient per thread) and the local pipeline (an Estimator
per thread, or one shared), and a test times a sleep. A callable with a `close()` is
closed in its thread at the end.

Latency is per request, measured by the client around the call (queueing on the
server included); throughput is completed requests over the wall time from the
moment every client is warmed up and released to the last answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from edgepose.errors import InputError
from edgepose.profile.options import check_count, check_run_length, parse_integers
from edgepose.profile.report import _ms, _rate
from edgepose.profile.stats import StageStats, stage_stats

#: Timed requests per concurrency level, shared among its clients.
DEFAULT_REQUESTS = 200
#: Untimed requests per client before the clock starts (connections, lazy set-up).
DEFAULT_CLIENT_WARMUP = 3

Request = Callable[[], Any]
RequestFactory = Callable[[], Request]


def parse_concurrency(text: str) -> tuple[int, ...]:
    """Client counts from "1,4,16", in the order given, each once."""
    return check_levels(parse_integers(text, "concurrency", "1,4,16"))


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    levels = tuple(levels)
    if not levels:
        raise InputError("no concurrency levels; expected e.g. (1, 4, 16)")
    for level in levels:
        check_count(level, "concurrency", 1, "client threads")
    if len(set(levels)) != len(levels):
        raise InputError(f"concurrency levels {list(levels)} repeat a level; give each once")
    return tuple(int(level) for level in levels)


@dataclass(frozen=True)
class ConcurrencyLevel:
    """`requests` timed requests from `concurrency` client threads.

    latency: per-request milliseconds. wall_s: from the release of the warmed-up
    clients to the last answer. max_in_flight: the most requests seen outstanding at
    once (the concurrency actually reached; below `concurrency` when requests are
    too short for the threads to overlap). latencies_ms: every sample, in no
    particular order (left out of to_dict).
    """

    concurrency: int
    requests: int
    wall_s: float
    latency: StageStats
    max_in_flight: int
    warmup_per_client: int
    latencies_ms: tuple[float, ...] = ()

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests,
                "wall_s": self.wall_s, "requests_per_s": self.requests_per_s,
                "latency_ms": {name: getattr(self.latency, name) for name in
                               ("mean", "std", "min", "p50", "p90", "p99", "max", "count")},
                "max_in_flight": self.max_in_flight,
                "warmup_per_client": self.warmup_per_client}


@dataclass(frozen=True)
class ConcurrencyReport:
    """Levels measured one after the other against one `target` (a description)."""

    target: str
    levels: tuple[ConcurrencyLevel, ...]
    created: str = ""
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "concurrency", "target": self.target, "created": self.created,
                "details": list(self.details),
                "levels": [level.to_dict() for level in self.levels]}

    def format_table(self) -> str:
        lines = [f"edgepose profile · {self.created}" if self.created else "edgepose profile",
                 self.target, *self.details, ""]
        lines.append(f"{'clients':>7}{'requests':>10}{'req/s':>9}{'mean':>9}{'p50':>9}"
                     f"{'p90':>9}{'p99':>9}{'in flight':>11}")
        for level in self.levels:
            stats = level.latency
            lines.append(f"{level.concurrency:>7}{level.requests:>10}"
                         f"{_rate(level.requests_per_s):>9}{_ms(stats.mean):>9}"
                         f"{_ms(stats.p50):>9}{_ms(stats.p90):>9}{_ms(stats.p99):>9}"
                         f"{level.max_in_flight:>11}")
        lines += ["", "Latencies in ms per request, measured by the client; req/s: requests "
                      "answered per second of wall time; in flight: the most requests "
                      "outstanding at once."]
        return "\n".join(lines)


class _Load:
    """What the client threads share: the tickets (with a request count), the in-flight
    count, and the first failure."""

    def __init__(self, requests: int | None, deadline_after_s: float | None) -> None:
        self.lock = threading.Lock()
        self.remaining = requests
        self.deadline_after_s = deadline_after_s
        self.deadline: float | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.failure: BaseException | None = None
        self.stop = threading.Event()

    def start(self) -> None:
        if self.deadline_after_s is not None:
            self.deadline = time.perf_counter() + self.deadline_after_s

    def take(self) -> bool:
        """Whether the calling client sends one more request; if so it is in flight."""
        with self.lock:
            if self.stop.is_set():
                return False
            if self.remaining is not None:
                if self.remaining <= 0:
                    return False
                self.remaining -= 1
            elif self.deadline is not None and time.perf_counter() >= self.deadline:
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = exc
        self.stop.set()


def measure_concurrency(factory: RequestFactory, concurrency: int, *,
                        requests: int | None = None, duration_s: float | None = None,
                        warmup: int = DEFAULT_CLIENT_WARMUP) -> ConcurrencyLevel:
    """Run `concurrency` client threads in a closed loop; `requests` timed requests in
    all (default DEFAULT_REQUESTS), or as many as start within `duration_s`.

    Each thread calls `factory()` for its request callable and sends `warmup` untimed
    requests; the clock starts when every thread is ready. The first exception of any
    thread stops them all and is raised here.
    """
    concurrency = check_count(concurrency, "concurrency", 1, "client threads")
    warmup = check_count(warmup, "warm-up", 0, "untimed requests per client")
    if requests is not None:
        check_count(requests, "request count", 1, "timed requests per concurrency level")
    requests, duration_s = check_run_length(requests, duration_s, DEFAULT_REQUESTS)
    load = _Load(requests, duration_s)
    ready = threading.Barrier(concurrency + 1)
    samples_ns: list[list[int]] = [[] for _ in range(concurrency)]
    finished_at: list[float] = [0.0] * concurrency

    def client(index: int) -> None:
        request = None
        try:
            request = factory()
            for _ in range(warmup):
                request()
            ready.wait()
            times = samples_ns[index]
            while load.take():
                began = time.perf_counter_ns()
                try:
                    request()
                finally:
                    times.append(time.perf_counter_ns() - began)
                    load.done()
            finished_at[index] = time.perf_counter()
        except threading.BrokenBarrierError:
            pass    # another client failed before the start; its error is the one to raise
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            load.fail(exc)
            ready.abort()
        finally:
            close = getattr(request, "close", None)
            if callable(close):
                try:
                    close()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    load.fail(exc)

    threads = [threading.Thread(target=client, args=(index,), daemon=True,
                                name=f"edgepose-client-{index}") for index in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        load.start()
        started = time.perf_counter()
    except threading.BrokenBarrierError:
        started = time.perf_counter()
    for thread in threads:
        thread.join()
    if load.failure is not None:
        raise load.failure
    recorded = tuple(ns / 1e6 for times in samples_ns for ns in times)
    if not recorded:
        raise InputError(f"no request finished at concurrency {concurrency}; give a longer "
                         "duration")
    wall_s = max(finished_at) - started
    return ConcurrencyLevel(concurrency=concurrency, requests=len(recorded), wall_s=wall_s,
                            latency=stage_stats(recorded), max_in_flight=load.max_in_flight,
                            warmup_per_client=warmup, latencies_ms=recorded)


def profile_concurrency(factory: RequestFactory, levels: Sequence[int], *, target: str,
                        requests: int | None = None, duration_s: float | None = None,
                        warmup: int = DEFAULT_CLIENT_WARMUP, details: Sequence[str] = (),
                        progress: Callable[[ConcurrencyLevel], None] | None = None
                        ) -> ConcurrencyReport:
    """measure_concurrency at each of `levels` in turn; `progress` sees each level."""
    levels = check_levels(levels)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    measured = []
    for level in levels:
        result = measure_concurrency(factory, level, requests=requests, duration_s=duration_s,
                                     warmup=warmup)
        measured.append(result)
        if progress is not None:
            progress(result)
    return ConcurrencyReport(target=target, levels=tuple(measured), created=created,
                             details=tuple(details))
