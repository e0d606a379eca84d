"""The Grafana dashboard's queries as Prometheus receives them (variables filled in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARD", "VARIABLES", "dashboard", "dashboard_expressions"]

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "ironwatch.json"
# What Grafana substitutes before it sends a query: a rate window, every gateway.
VARIABLES = {"$__rate_interval": "1m", "$gateway": ".*"}


def dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def dashboard_expressions(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(`panel title / refId`, expression with the variables filled in) of every target."""
    out = []
    for panel in dashboard(path)["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in VARIABLES.items():
                expr = expr.replace(var, value)
            out.append((f"{panel['title']} / {target['refId']}", expr))
    return out
