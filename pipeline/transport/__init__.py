"""Event transports: Kafka for deployments, an embedded one for a single process."""

from __future__ import annotations

from pipeline.transport.base import (
    Backoff,
    Consumer,
    Headers,
    Message,
    Producer,
    RecordRejectedError,
    Transport,
)
from pipeline.transport.confluent import ConfluentTransport
from pipeline.transport.embedded import EmbeddedTransport
from pipeline.transport.kafka import KafkaTransport
from sla.config import EmbeddedTransportConfig, KafkaTransportConfig

# The Kafka transports by `KafkaTransportConfig.client`; both take the same arguments.
KAFKA_CLIENTS: dict[str, type[ConfluentTransport] | type[KafkaTransport]] = {
    "confluent-kafka": ConfluentTransport,
    "kafka-python": KafkaTransport,
}

__all__ = [
    "KAFKA_CLIENTS",
    "Backoff",
    "ConfluentTransport",
    "Consumer",
    "EmbeddedTransport",
    "Headers",
    "KafkaTransport",
    "Message",
    "Producer",
    "RecordRejectedError",
    "Transport",
    "open_transport",
]


def open_transport(
    config: KafkaTransportConfig | EmbeddedTransportConfig, *, backoff: Backoff | None = None
) -> Transport:
    """The transport `config` describes; `backoff` bounds how long Kafka connections retry."""
    if isinstance(config, KafkaTransportConfig):
        return KAFKA_CLIENTS[config.client](
            config.bootstrap,
            partitions=config.partitions,
            replication_factor=config.replication_factor,
            client_id=config.client_id,
            session_timeout_s=config.session_timeout,
            backoff=backoff,
        )
    return EmbeddedTransport()
