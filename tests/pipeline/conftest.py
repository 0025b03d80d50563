"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import pytest

from pipeline.transport import KAFKA_CLIENTS, Backoff, EmbeddedTransport, Transport

PARTITIONS = 3


@pytest.fixture(
    params=[
        *(pytest.param(client, marks=pytest.mark.kafka) for client in KAFKA_CLIENTS),
        "embedded",
    ]
)
def transport(request: pytest.FixtureRequest) -> Transport:
    """A Kafka transport (each client) on the session broker, or an embedded one; 3 partitions."""
    if request.param in KAFKA_CLIENTS:
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        return KAFKA_CLIENTS[request.param](
            bootstrap, partitions=PARTITIONS, backoff=Backoff(deadline_s=30.0)
        )
    return EmbeddedTransport(partitions=PARTITIONS)
