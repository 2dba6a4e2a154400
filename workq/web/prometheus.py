"""GET /metrics: the namespace's figures from Redis in Prometheus' text format (workq.metrics.NamespaceCollector),
behind the same Host and auth checks as every page. Needs the `metrics` extra; without it the route says so (501)."""

from __future__ import annotations

from flask import Blueprint, Response

from workq.errors import WorkqError
from workq.metrics import NamespaceCollector, require_prometheus
from workq.web.state import dashboard

blueprint = Blueprint("prometheus", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    try:
        require_prometheus()
    except WorkqError as exc:
        return Response(f"{exc}\n", 501, mimetype="text/plain")
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry()
    registry.register(NamespaceCollector(dashboard().client))
    return Response(generate_latest(registry), 200, content_type=CONTENT_TYPE_LATEST)
