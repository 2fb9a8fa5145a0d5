"""Prometheus metrics, one registry per process component, every series labelled with ``service``.

A registry of its own (not the library's global one) so that several workers or apps in one Python process
(the in-process runtime tests) never collide, and each ``/metrics`` shows exactly its component's series.
The ``service`` label is the process name (``referrals-worker``, ``referrals-api``...), as in the logs'
``service`` field, so a log line and a metric of the same process are found by the same value.

Label values are topic names, route templates and error kinds: never ids or anything personal.
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

# No ``*_created`` series: they double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ErrorKind:
    """Values of ``circles_errors_total{kind}``."""

    UNDECODABLE = "undecodable"  # a record that is not a known event: dead-lettered
    REFUSED = "refused"  # a handler refused the record (ProcessingError): dead-lettered
    UNEXPECTED = "unexpected"  # a handler raised something else: dead-lettered
    INFRASTRUCTURE = "infrastructure"  # Kafka or network: the worker stops and is restarted
    COMMIT_FAILED = "commit_failed"  # offsets not committed (the group moved on): records come again
    HTTP_UNHANDLED = "http_unhandled"  # an HTTP request failed with a 500


class Metrics:
    """The metric families every service exposes; workers fill the stream ones, APIs the HTTP ones."""

    def __init__(self, service: str, *, process_collector: bool = True) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        if process_collector:
            ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        registry = self.registry
        self.events_in = Counter(
            "circles_events_in",
            "Records consumed and processed, per topic",
            ["service", "topic"],
            registry=registry,
        )
        self.events_out = Counter(
            "circles_events_out",
            "Records published and acknowledged, per topic (dead letters too, on their .dlq topic)",
            ["service", "topic"],
            registry=registry,
        )
        self.processing = Histogram(
            "circles_processing_seconds",
            "Handler time per record (per batch call for batch routes), per consumed topic",
            ["service", "topic"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.batch = Histogram(
            "circles_batch_seconds",
            "Whole batches: handlers, publishing and state writes until acknowledged",
            ["service"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.errors = Counter("circles_errors", "Errors, by kind", ["service", "kind"], registry=registry)
        self.dead_letters = Counter(
            "circles_dead_letters",
            "Records dead-lettered, per source topic (the records go to <topic>.dlq)",
            ["service", "topic"],
            registry=registry,
        )
        self.lag = Gauge(
            "circles_consumer_lag",
            "Records not yet processed: partition high-water mark minus processed position",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self.http_requests = Counter(
            "circles_http_requests",
            "HTTP requests, by route template and status",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "circles_http_request_seconds",
            "HTTP request time, by route template",
            ["service", "route"],
            buckets=_SECONDS,
            registry=registry,
        )

    def consumed(self, topic: str, count: int = 1) -> None:
        self.events_in.labels(self.service, topic).inc(count)

    def published(self, topic: str, count: int = 1) -> None:
        self.events_out.labels(self.service, topic).inc(count)

    def handled(self, topic: str, seconds: float) -> None:
        self.processing.labels(self.service, topic).observe(seconds)

    def batch_done(self, seconds: float) -> None:
        self.batch.labels(self.service).observe(seconds)

    def error(self, kind: str) -> None:
        self.errors.labels(self.service, kind).inc()

    def dead_lettered(self, source_topic: str) -> None:
        self.dead_letters.labels(self.service, source_topic).inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(self.service, topic, str(partition)).set(max(0, lag))

    def forget_lag(self, topic: str, partition: int) -> None:
        """A partition this worker no longer holds: its lag is another worker's to report."""
        with contextlib.suppress(KeyError):
            self.lag.remove(self.service, topic, str(partition))

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(self.service, method, route, str(status)).inc()
        self.http_seconds.labels(self.service, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
