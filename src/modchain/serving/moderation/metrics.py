"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from typing import Any

#: Route templates used as the ``endpoint`` label; any other path counts as "other" (bounded cardinality).
ENDPOINTS: frozenset[str] = frozenset({"/v1/moderations", "/v1/moderate", "/health", "/metrics"})


class ServiceMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("modchain_http_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram(
            "modchain_http_request_duration_seconds", "Request latency by endpoint.", ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry)
        self.results = Counter("modchain_moderation_results", "Moderated inputs by endpoint and verdict.",
                               ["endpoint", "flagged"], registry=self.registry)
        self.flagged = Counter(
            "modchain_moderation_flagged", "Flagged inputs by category (OpenAI category on /v1/moderations, "
            "blocking filter on /v1/moderate).", ["endpoint", "category"], registry=self.registry)
        self.in_flight = Gauge("modchain_moderation_in_flight", "Moderation requests admitted and not done.",
                               registry=self.registry)
        self.rejected = Counter("modchain_http_rejected", "Requests refused before moderation, by reason.",
                                ["reason"], registry=self.registry)

    @staticmethod
    def endpoint(path: str) -> str:
        return path if path in ENDPOINTS else "other"

    def observe(self, path: str, status: int, seconds: float) -> None:
        endpoint = self.endpoint(path)
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def verdict(self, endpoint: str, flagged: bool, categories: Any = ()) -> None:
        self.results.labels(endpoint, "true" if flagged else "false").inc()
        for category in categories:
            self.flagged.labels(endpoint, category).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
