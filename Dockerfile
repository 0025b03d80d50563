# The slamon image: every `slamon` subcommand, run as an unprivileged user.
#   docker build -t slamon .
#   docker run --rm -v "$PWD/examples/compose.yaml:/etc/slamon/slamon.yaml:ro" slamon validate /etc/slamon/slamon.yaml
# docker-compose.yml builds it for its slamon-collect and slamon-pipeline services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Chromium prints the review packs to PDF (`slamon report`, `reports.pdf`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# A regular (not editable) install, so the sources can go once it is done.
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /var/lib/slamon --shell /usr/sbin/nologin slamon \
    && mkdir -p /var/lib/slamon /etc/slamon \
    && chown slamon:slamon /var/lib/slamon

# The DuckDB store lives here: mount a volume to keep it across container restarts.
VOLUME ["/var/lib/slamon"]
WORKDIR /var/lib/slamon
USER slamon

# The Prometheus exporter of `slamon pipeline` / `slamon run` (exporter.listen in the config).
EXPOSE 9464
ENTRYPOINT ["slamon"]
CMD ["--help"]
