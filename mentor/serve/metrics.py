"""The server's counters and histograms, written in Prometheus' text format (`GET /metrics`).

Kept in the worker process (each of `--workers` processes counts its own requests, labelled
with its `pid`); updated from the event loop and the inference thread under one lock.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """Counts of observations at or under each bucket's upper bound, their sum and count."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last: above every bound (+Inf)
        self.total, self.n = 0.0, 0

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """The `_bucket` (cumulative), `_sum` and `_count` lines."""
        out, cumulative = [], 0
        bounds = [*(f"{b:g}" for b in self.buckets), "+Inf"]
        for bound, count in zip(bounds, self.counts, strict=True):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}le="{bound}"}} {cumulative}')
        plain = labels.rstrip(",")
        out.append(f"{name}_sum{{{plain}}} {self.total:.6f}")
        out.append(f"{name}_count{{{plain}}} {self.n}")
        return out


class ServerMetrics:
    """Requests by endpoint and status, latency, batch sizes and queue length."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.queued_items = 0
        self.items_predicted = 0

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        """One answered request."""
        with self.lock:
            self.requests[(endpoint, status)] += 1
            self.latency.observe(seconds)

    def record_batch(self, size: int) -> None:
        """One call of the model on `size` items."""
        with self.lock:
            self.batch_size.observe(size)
            self.items_predicted += size

    def text(self) -> str:
        """The metrics in Prometheus' text exposition format (version 0.0.4)."""
        pid = f'pid="{os.getpid()}"'
        with self.lock:
            lines = [
                "# HELP mentor_requests_total Requests answered, by endpoint and status code.",
                "# TYPE mentor_requests_total counter",
            ]
            for (endpoint, status), count in sorted(self.requests.items()):
                lines.append(
                    f'mentor_requests_total{{{pid},endpoint="{endpoint}",status="{status}"}} '
                    f"{count}"
                )
            errors = Counter(
                {status: n for (_, status), n in self.requests.items() if status >= 400}
            )
            lines += ["# HELP mentor_errors_total Requests answered with an error, by status.",
                      "# TYPE mentor_errors_total counter"]  # fmt: skip
            lines += [
                f'mentor_errors_total{{{pid},status="{s}"}} {n}' for s, n in sorted(errors.items())
            ]
            lines += ["# HELP mentor_request_seconds Time from request to response.",
                      "# TYPE mentor_request_seconds histogram"]  # fmt: skip
            lines += self.latency.lines("mentor_request_seconds", f"{pid},")
            lines += ["# HELP mentor_batch_size Items per call of the model.",
                      "# TYPE mentor_batch_size histogram"]  # fmt: skip
            lines += self.batch_size.lines("mentor_batch_size", f"{pid},")
            lines += ["# HELP mentor_queued_items Items waiting for the model.",
                      "# TYPE mentor_queued_items gauge",
                      f"mentor_queued_items{{{pid}}} {self.queued_items}",
                      "# HELP mentor_items_predicted_total Items the model predicted.",
                      "# TYPE mentor_items_predicted_total counter",
                      f"mentor_items_predicted_total{{{pid}}} {self.items_predicted}"]  # fmt: skip
        return "\n".join(lines) + "\n"


__all__ = ["Histogram", "ServerMetrics"]
