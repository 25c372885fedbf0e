"""``GET /vodflow/metrics``, the HTTP adapter of ``catalog.metrics``: Prometheus text format (prometheus-client),
built from the catalog per scrape.

Scrape auth is a bearer token (``[vodflow] metrics_token``; Prometheus: ``authorization: {credentials_file}``),
not an Airflow login: Airflow's JWTs expire and Prometheus cannot log in, and a separate port would need its own
TLS and network policy next to the api-server's. Without a token configured the endpoint refuses every scrape.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from fastapi import HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from vodflow.catalog.metrics import Histogram, MetricsSnapshot, snapshot
from vodflow.settings import load_settings
from vodflow.web.waiting import waiting_tasks


def _histogram(name: str, doc: str, by_rendition: dict[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["rendition"])
    for rendition, histogram in sorted(by_rendition.items()):
        family.add_metric([rendition], histogram.cumulative(), sum_value=histogram.total)
    return family


class CatalogCollector:
    """A prometheus-client collector over one snapshot (and the queue length from Airflow's metadata DB)."""

    def __init__(self, data: MetricsSnapshot, waiting_transcode: int, now: datetime) -> None:
        self.data, self.waiting, self.now = data, waiting_transcode, now

    def collect(self) -> Iterator[Metric]:
        data = self.data
        videos = GaugeMetricFamily("vodflow_videos", "Videos in the catalog by status.", labels=["status"])
        for status, count in data.videos_by_status.items():
            videos.add_metric([status], count)
        yield videos
        failures = GaugeMetricFamily("vodflow_video_failures", "Videos whose last run failed, by error code "
                                     "(a ready video whose rebuild failed counts too).", labels=["error_code"])
        for code, count in sorted(data.failures_by_code.items()):
            failures.add_metric([code], count)
        yield failures
        histograms = data.encodes.histograms
        yield _histogram("vodflow_encode_seconds", "Wall time of whole-video encodes, by rendition (renditions "
                         "of one video share one decode).", histograms["encode_seconds"])
        yield _histogram("vodflow_encode_realtime_factor", "Seconds of source encoded per second, by rendition.",
                         histograms["encode_realtime_factor"])
        encoded = CounterMetricFamily("vodflow_encoded_bytes", "Bytes of media encoded (whole-video encodes).")
        encoded.add_metric([], data.encodes.bytes)
        yield encoded
        yield GaugeMetricFamily("vodflow_published_bytes", "Bytes of media in published versions.",
                                value=data.published_bytes)
        yield GaugeMetricFamily("vodflow_transcode_tasks_waiting", "transcode_video tasks waiting for a worker "
                                "on the transcode queue (scheduled or queued).", value=self.waiting)
        refused = CounterMetricFamily("vodflow_limit_refusals", "Requests refused by a per-user rate limit or quota, "
                                      "by the limit's setting (every api-server process counted together).",
                                      labels=["reason"])
        for reason, count in sorted(data.refusals.items()):
            refused.add_metric([reason], count)
        yield refused
        age = (self.now - data.oldest_unfinished).total_seconds() if data.oldest_unfinished else 0.0
        yield GaugeMetricFamily("vodflow_oldest_unfinished_video_age_seconds", "Age of the oldest video still "
                                "queued, probing, transcoding or publishing (0: none).", value=max(age, 0.0))


def render(data: MetricsSnapshot, waiting_transcode: int, now: datetime | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CatalogCollector(data, waiting_transcode, now or datetime.now(UTC)))
    return generate_latest(registry)


def authorized(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <metrics_token>``, compared in constant time; never with no token configured."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].encode(), token.encode())


def metrics_endpoint(catalog_factory: Callable) -> Callable:
    def metrics(request: Request) -> Response:
        """Prometheus scrape (bearer token: ``metrics_token``)."""
        if not authorized(request.headers.get("Authorization"), load_settings().metrics_token):
            raise HTTPException(status_code=401, detail="metrics need Authorization: Bearer <metrics_token>",
                                headers={"WWW-Authenticate": "Bearer"})
        body = render(snapshot(catalog_factory().engine), waiting_tasks(queue="transcode"))
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return metrics
