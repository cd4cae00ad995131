"""The compose file's tracing: a pinned OpenTelemetry collector whose pipeline is complete, fed by the services."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_collector_receives_otlp_and_exports_every_trace_it_receives() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text(encoding="utf-8"))
    pipeline = config["service"]["pipelines"]["traces"]
    assert set(pipeline["receivers"]) <= set(config["receivers"])
    assert set(pipeline["processors"]) <= set(config["processors"])
    assert set(pipeline["exporters"]) <= set(config["exporters"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_compose_runs_a_pinned_collector_and_jaeger_only_for_development() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in ("otel-collector", "jaeger"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} is pinned: {image}"
    assert services["jaeger"]["profiles"] == ["dev"]
    assert "./deploy/otel-collector.yaml:/etc/otelcol/config.yaml:ro" in services["otel-collector"]["volumes"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4318" in (ROOT / "docker-compose.yml").read_text()
