"""Collectors: turn probes, webhooks and imports into slamon CloudEvents."""
