"""Grafana dashboards of driftgate, written as code with grafana-foundation-sdk.

``python -m grafana.build`` writes the JSON to ``grafana/dashboards/``;
``python -m grafana.build --check`` fails when the committed JSON is stale.
"""
