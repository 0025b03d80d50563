"""Grafana dashboards and provisioning for slamon."""
