"""The closed-loop load generator, timed on requests that sleep a known time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.profile.concurrency import (measure_concurrency, parse_concurrency,
                                          profile_concurrency)

SLEEP_S = 0.02


class Recorder:
    """A request factory whose requests sleep SLEEP_S; it notes which thread made and
    closed each request, and the most requests it saw running at once."""

    def __init__(self, sleep_s=SLEEP_S, fail_on_call=None, fail_in_factory=False):
        self.sleep_s = sleep_s
        self.fail_on_call = fail_on_call
        self.fail_in_factory = fail_in_factory
        self.lock = threading.Lock()
        self.calls = self.running = self.most_running = 0
        self.made_in, self.closed_in = [], []

    def __call__(self):
        recorder = self
        with self.lock:
            self.made_in.append(threading.get_ident())
            if self.fail_in_factory and len(self.made_in) == 2:
                raise RuntimeError("no connection for client 2")

        class Request:
            def __call__(self):
                with recorder.lock:
                    recorder.calls += 1
                    call = recorder.calls
                    recorder.running += 1
                    recorder.most_running = max(recorder.most_running, recorder.running)
                try:
                    if call == recorder.fail_on_call:
                        raise ValueError(f"request {call} failed")
                    time.sleep(recorder.sleep_s)
                finally:
                    with recorder.lock:
                        recorder.running -= 1

            def close(self):
                with recorder.lock:
                    recorder.closed_in.append(threading.get_ident())

        return Request()


def test_every_request_is_counted_and_the_clients_overlap():
    recorder = Recorder()
    level = measure_concurrency(recorder, 4, requests=24, warmup=2)
    assert level.requests == 24 and len(level.latencies_ms) == 24
    assert recorder.calls == 24 + 4 * 2          # the warm-up is untimed, not skipped
    assert level.max_in_flight == 4 == recorder.most_running
    assert min(level.latencies_ms) >= SLEEP_S * 1e3
    # 24 requests of 20 ms on 4 clients: 6 rounds, 120 ms; one client would take 480 ms,
    # 50 requests/s at best. The slack is for a loaded machine's late wake-ups.
    assert 0.12 <= level.wall_s < 0.32
    assert level.requests_per_s == pytest.approx(24 / level.wall_s)
    assert level.requests_per_s > 1.5 / SLEEP_S


def test_one_client_sends_one_request_at_a_time():
    recorder = Recorder(sleep_s=0.005)
    level = measure_concurrency(recorder, 1, requests=10, warmup=0)
    assert level.max_in_flight == 1 == recorder.most_running
    assert level.wall_s >= 10 * 0.005


def test_percentiles_are_numpys_on_the_recorded_samples():
    durations = iter(np.linspace(0.001, 0.03, 40))
    lock = threading.Lock()

    def factory():
        def request():
            with lock:
                pause = next(durations)
            time.sleep(pause)
        return request

    level = measure_concurrency(factory, 2, requests=40, warmup=0)
    samples = np.asarray(level.latencies_ms)
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    stats = level.latency
    assert (stats.p50, stats.p90, stats.p99) == pytest.approx((p50, p90, p99), rel=1e-12)
    assert stats.mean == pytest.approx(samples.mean()) and stats.count == 40
    assert stats.max == pytest.approx(samples.max()) and stats.max >= 30.0
    assert stats.min >= 1.0


def test_factories_run_and_close_in_their_own_threads():
    recorder = Recorder(sleep_s=0.001)
    measure_concurrency(recorder, 3, requests=6, warmup=1)
    main = threading.get_ident()
    assert len(set(recorder.made_in)) == 3 and main not in recorder.made_in
    assert sorted(recorder.closed_in) == sorted(recorder.made_in)


def test_a_duration_bounds_the_run():
    recorder = Recorder(sleep_s=0.01)
    level = measure_concurrency(recorder, 2, duration_s=0.2, warmup=0)
    assert level.wall_s >= 0.2
    # Two clients for 200 ms of 10 ms requests: at most ~40 start before the deadline.
    assert 10 <= level.requests <= 42


def test_a_failing_request_stops_every_client_and_is_raised():
    recorder = Recorder(sleep_s=0.002, fail_on_call=7)
    began = time.perf_counter()
    with pytest.raises(ValueError, match="request 7 failed"):
        measure_concurrency(recorder, 4, requests=1000, warmup=1)
    assert time.perf_counter() - began < 1.0          # not the 1000 requests
    assert len(recorder.closed_in) == 4


def test_a_failing_factory_is_raised_without_hanging():
    recorder = Recorder(fail_in_factory=True)
    with pytest.raises(RuntimeError, match="client 2"):
        measure_concurrency(recorder, 3, requests=5)


def test_levels_run_in_order_into_one_report():
    seen = []
    report = profile_concurrency(Recorder(sleep_s=0.002), [1, 3], target="sleep", requests=6,
                                 warmup=0, details=("a detail",), progress=seen.append)
    assert [level.concurrency for level in report.levels] == [1, 3] == \
        [level.concurrency for level in seen]
    data = report.to_dict()
    assert [level["requests"] for level in data["levels"]] == [6, 6]
    assert set(data["levels"][0]["latency_ms"]) >= {"p50", "p90", "p99", "mean"}
    table = report.format_table()
    assert "sleep" in table and "a detail" in table
    rows = [line.split() for line in table.splitlines() if line.split()[:2] in (["1", "6"],
                                                                                 ["3", "6"])]
    assert len(rows) == 2


@pytest.mark.parametrize("text, expected", [("1,4,16", (1, 4, 16)), ("8", (8,)),
                                            (" 2, 1 ", (2, 1))])
def test_concurrency_levels_parse(text, expected):
    assert parse_concurrency(text) == expected


@pytest.mark.parametrize("text", ["", "0", "1,x", "4,4", "-2"])
def test_bad_concurrency_levels_are_refused(text):
    with pytest.raises(InputError):
        parse_concurrency(text)


@pytest.mark.parametrize("kwargs", [{"requests": 0}, {"duration_s": -1.0},
                                    {"requests": 5, "duration_s": 1.0}, {"warmup": -1}])
def test_bad_run_lengths_are_refused(kwargs):
    with pytest.raises(InputError):
        measure_concurrency(Recorder(), 1, **kwargs)
