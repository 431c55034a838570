"""`GET /metrics` serves the Prometheus text format with the node's metrics."""

from __future__ import annotations

from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from tests.support.waiting import eventually


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_by_route_and_report_backends(client: AsyncClient) -> None:
    await client.get("/health")
    await client.get("/no/such/path")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    health = frozenset({("method", "GET"), ("route", "/health"), ("status", "200")})
    unmatched = frozenset({("method", "GET"), ("route", "unmatched"), ("status", "404")})
    assert values[("azora_http_requests_total", health)] >= 1
    assert values[("azora_http_requests_total", unmatched)] >= 1
    for backend in ("postgres", "redis", "mongo"):
        assert values[("azora_backend_up", frozenset({("backend", backend)}))] == 1
    assert values[("azora_outbox_lag_rows", frozenset())] == 0
    assert ("azora_stream_length", frozenset()) in values
    assert values[("azora_sockets_connected", frozenset())] == 0
    assert any(name.startswith("azora_cache_") for name, _ in values)


async def test_published_events_are_counted_by_type(
    client: AsyncClient, settings: Settings
) -> None:
    assert settings.jwt_secret is not None
    token = issue_token(settings.jwt_secret, sub="ops", role=Role.ADMIN)
    before = samples((await client.get("/metrics")).text)
    key = ("azora_events_published_total", frozenset({("type", "system.alert")}))
    response = await client.post(
        "/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"type": "system.alert", "payload": {"m": "x"}, "source": "test"},
    )
    assert response.status_code == 202
    after = samples((await client.get("/metrics")).text)
    assert after[key] == before.get(key, 0) + 1


async def test_storage_gauges_show_what_each_store_keeps(
    client: AsyncClient, settings: Settings
) -> None:
    assert settings.jwt_secret is not None
    token = issue_token(settings.jwt_secret, sub="ops", role=Role.ADMIN)
    for n in range(3):
        response = await client.post(
            "/events",
            headers={"Authorization": f"Bearer {token}"},
            json={"type": "system.alert", "payload": {"n": n}, "source": "test"},
        )
        assert response.status_code == 202

    async def archived() -> bool:
        values = samples((await client.get("/metrics")).text)
        return values.get(("azora_storage_items", frozenset({("store", "archive")}))) == 3

    await eventually(archived)
    values = samples((await client.get("/metrics")).text)

    def gauge(name: str, store: str) -> float:
        return values[(name, frozenset({("store", store)}))]

    assert gauge("azora_storage_items", "stream") == 3
    assert gauge("azora_storage_items", "outbox") == 0
    assert gauge("azora_storage_retention_seconds", "outbox") == 604_800
    assert ("azora_storage_retention_seconds", frozenset({("store", "archive")})) not in values
    for store in ("outbox", "archive"):
        assert gauge("azora_storage_bytes", store) > 0
    assert 0 <= gauge("azora_storage_oldest_age_seconds", "stream") < 60
    assert 0 <= gauge("azora_storage_oldest_age_seconds", "archive") < 60
