"""slamon: the command line and the wiring between collectors, pipeline and exporter."""
