"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import pytest

from pipeline.transport import Backoff, EmbeddedTransport, KafkaTransport, Transport

PARTITIONS = 3


@pytest.fixture(params=[pytest.param("kafka", marks=pytest.mark.kafka), "embedded"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """A Kafka transport on the session broker, or an embedded one, both with 3 partitions."""
    if request.param == "kafka":
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        return KafkaTransport(bootstrap, partitions=PARTITIONS, backoff=Backoff(deadline_s=30.0))
    return EmbeddedTransport(partitions=PARTITIONS)
