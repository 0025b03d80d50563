"""Webhook adapters: Alertmanager alerts, service desk tickets and records become events."""
