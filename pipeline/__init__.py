"""The pipeline: transport, event store, ingest loop and Prometheus exporter."""
