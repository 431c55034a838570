"""The Grafana dashboard queries only metrics that `/metrics` really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "azora-nexus.json"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def queried_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bazora_[a-z_]+\b", expr)}


def family_of(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


async def test_every_metric_the_dashboard_queries_is_exported(client: AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    families = {(family.name, family.type) for family in text_string_to_metric_families(text)}
    names = {name for name, _ in families}
    queried = queried_metrics()
    assert len(queried) >= 15
    missing = {name for name in queried if family_of(name) not in names}
    assert missing == set()
    # A counter is queried as *_total, a histogram as *_bucket: the suffix must fit the type.
    kinds = dict(families)
    for name in queried:
        if name.endswith("_total"):
            assert kinds[family_of(name)] == "counter", name
        if name.endswith("_bucket"):
            assert kinds[family_of(name)] == "histogram", name


def test_the_prometheus_config_scrapes_metrics() -> None:
    config = (DASHBOARD.parents[1] / "prometheus" / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in config
