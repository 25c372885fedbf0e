"""The Prometheus exposition built from the real catalog: it parses with prometheus_client's own parser, and a
real run (S3 over HTTP, Postgres catalog) moves the counters and histograms. Scrape auth is checked here as a
function and end to end in tests/e2e/test_integrations.py."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vodflow import pipeline
from vodflow.catalog.metrics import snapshot
from vodflow.web.metrics import authorized, render

pytestmark = pytest.mark.integration


def scrape(services: pipeline.Services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(snapshot(services.catalog.engine), waiting_transcode=3).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_a_run_moves_the_metrics(airflow_env, media):
    services = pipeline.Services.load()
    before = scrape(services)
    key = f"uploads/{uuid.uuid4().hex[:6]}/metrics.mp4"
    services.storage.client.upload_file(str(media["small"]), "vodflow", key)
    job, probed, plan, items = pipeline.prepare({"source": f"s3://vodflow/{key}", "ladder": ["240p"]},
                                                "run-metrics", lambda step, job: None, services)
    assert scrape(services)[("vodflow_oldest_unfinished_video_age_seconds", ())] >= 0
    results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
    pipeline.publish(job, plan, results, services)
    pipeline.discard_unpublished(job, services)
    after = scrape(services)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert moved("vodflow_videos", status="ready") == 1
    assert moved("vodflow_encode_seconds_count", rendition="240p") == 1
    assert moved("vodflow_encode_seconds_sum", rendition="240p") > 0
    assert moved("vodflow_encode_realtime_factor_count", rendition="240p") == 1
    assert moved("vodflow_encode_seconds_bucket", rendition="240p", le="+Inf") == 1
    assert moved("vodflow_encoded_bytes_total") > 100_000
    assert moved("vodflow_published_bytes") > 100_000
    assert after[("vodflow_transcode_tasks_waiting", ())] == 3


def test_failures_are_counted_by_code(airflow_env):
    services = pipeline.Services.load()
    before = scrape(services).get(("vodflow_video_failures", (("error_code", "source_missing"),)), 0)
    with pytest.raises(Exception, match="no object"):
        pipeline.register({"source": f"s3://vodflow/uploads/{uuid.uuid4().hex}.mp4"}, "run-m-missing", services)
    assert scrape(services)[("vodflow_video_failures", (("error_code", "source_missing"),))] == before + 1


def test_scrapes_need_the_token():
    assert authorized("Bearer s3cret-token", "s3cret-token")
    assert not authorized(None, "s3cret-token") and not authorized("Bearer wrong", "s3cret-token")
    assert not authorized("Basic czNjcmV0LXRva2Vu", "s3cret-token")
    assert not authorized("Bearer ", "")  # no token configured: nobody scrapes
