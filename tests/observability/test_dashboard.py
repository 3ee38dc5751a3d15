"""The provisioned Grafana dashboard and Prometheus config only name metrics the server exports."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.harness import metrics_text, running_app
from tests.observability.test_metrics import known_sequence

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lossd.json"
REQUIRED = {  # every metric the issue names
    "lossd_request_duration_seconds", "lossd_phase_duration_seconds", "lossd_request_bytes",
    "lossd_response_bytes", "lossd_requests", "lossd_elements", "lossd_requests_in_flight", "lossd_ready",
    "lossd_jit_compile_seconds", "lossd_build_info", "process_cpu_seconds", "process_resident_memory_bytes",
}
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",),
            "info": ("_info",), "summary": ("_count", "_sum", "")}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset"}


@pytest.fixture(scope="module")
def exported() -> tuple[set[str], set[str]]:
    """(family names, sample names) a server exports after calls of every kind."""
    async def scenario():
        async with running_app(warmup=True) as app:
            await known_sequence(app)
            return (await metrics_text(app)).text

    families, samples = set(), set()
    for family in text_string_to_metric_families(asyncio.run(scenario())):
        families.add(family.name)
        samples.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        samples.update(s.name for s in family.samples)
    return families, samples


def expressions(node) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and query variables."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, str) and node.get("type") != "datasource":
                found.append(value)
            else:
                found += expressions(value)
    elif isinstance(node, list):
        for item in node:
            found += expressions(item)
    return found


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (or a Grafana ``label_values(metric, label)``)."""
    if expr.startswith("label_values("):
        return {expr[len("label_values("):].split(",")[0].split("{")[0].strip()}
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                     # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " ", text)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group() in KEYWORDS:
            continue  # a function or aggregation
        names.add(match.group())
    return names


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.99, sum by (le, loss) (rate(a_bucket{x="y(z)"}[5m])))') \
        == {"a_bucket"}
    assert metric_names("sum(b) / sum without (instance) (c_total) > 1e-3") == {"b", "c_total"}
    assert metric_names("label_values(lossd_requests_total, loss)") == {"lossd_requests_total"}


def test_server_exports_every_named_metric(exported):
    families, _ = exported
    assert REQUIRED <= families, REQUIRED - families


def test_dashboard_expressions_name_only_exported_metrics(exported):
    _, samples = exported
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = expressions(dashboard)
    assert len(exprs) >= 15
    used = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= samples, (expr, names - samples)
        used |= names
    # the panels the issue asks for: rate + error ratio, quantiles per loss and phase,
    # in-flight, payload sizes, warm-up
    joined = "\n".join(exprs)
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, loss) (rate(lossd_request_duration" in joined
        assert f"histogram_quantile({quantile}, sum by (le, phase) (rate(lossd_phase_duration" in joined
    assert 'code!="OK"' in joined
    assert {"lossd_requests_total", "lossd_requests_in_flight", "lossd_request_bytes_bucket",
            "lossd_response_bytes_bucket", "lossd_jit_compile_seconds", "lossd_ready"} <= used


def test_dashboard_panels_are_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and p["title"]
        if p["type"] != "row":
            assert p["targets"] and all(t["refId"] and t["expr"] for t in p["targets"])


def test_provisioning_files_point_at_each_other():
    prometheus = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in prometheus and "job_name: lossd" in prometheus
    datasource = (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "type: prometheus" in datasource and "uid: prometheus" in datasource
    provider = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "lossd.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    # the CPU/memory panels filter on the scrape job configured above
    assert any('job="lossd"' in e for e in expressions(json.loads(DASHBOARD.read_text())))
