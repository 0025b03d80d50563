"""What the embedded transport adds to the shared contract: threads, waiting and stable keys."""

from __future__ import annotations

import threading
import time
import zlib

import pytest

from pipeline.transport import EmbeddedTransport, Message, open_transport
from sla.config import EmbeddedTransportConfig
from sla.errors import TransportError


def test_open_transport_builds_the_embedded_one_from_its_config() -> None:
    assert isinstance(open_transport(EmbeddedTransportConfig()), EmbeddedTransport)


def test_a_key_always_hashes_to_the_same_partition() -> None:
    transport = EmbeddedTransport(partitions=4)
    producer = transport.producer()
    producer.send("t", "checkout", b"a")
    producer.send("t", None, b"b")
    producer.send("t", None, b"c")
    consumer = transport.consumer("g", ["t"])
    received = {m.value: m for m in consumer.poll_batch(10, 0)}
    # crc32(b"checkout") % 4, the same in every process; keyless records go round robin 0, 1.
    assert received[b"a"].partition == zlib.crc32(b"checkout") % 4
    assert (received[b"b"].partition, received[b"c"].partition) == (0, 1)
    assert received[b"b"].key is None


def test_concurrent_producers_lose_nothing_and_keep_per_key_order() -> None:
    transport = EmbeddedTransport(partitions=3)
    per_thread = 2000

    def produce(service: str) -> None:
        producer = transport.producer()
        for seq in range(per_thread):
            producer.send("t", service, f"{service}:{seq}".encode())

    threads = [threading.Thread(target=produce, args=(f"svc-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    consumer = transport.consumer("g", ["t"])
    received: list[Message] = []
    # Consume while the producers are still appending.
    while any(t.is_alive() for t in threads) or len(received) < 4 * per_thread:
        received.extend(consumer.poll_batch(500, 0.1))
    for thread in threads:
        thread.join()

    assert len(received) == 4 * per_thread
    for n in range(4):
        values = [m.value for m in received if m.key == f"svc-{n}".encode()]
        assert values == [f"svc-{n}:{seq}".encode() for seq in range(per_thread)]


def test_poll_wakes_up_as_soon_as_a_record_arrives() -> None:
    transport = EmbeddedTransport()
    consumer = transport.consumer("g", ["t"])
    timer = threading.Timer(0.2, lambda: transport.producer().send("t", "x", b"late"))
    started = time.monotonic()
    timer.start()
    batch = consumer.poll_batch(10, 5.0)
    waited = time.monotonic() - started
    assert [m.value for m in batch] == [b"late"]
    # Woken by the send at 0.2 s, far before the 5 s timeout.
    assert 0.15 < waited < 2.0


def test_empty_poll_waits_for_the_timeout() -> None:
    consumer = EmbeddedTransport().consumer("g", ["nothing-here"])
    started = time.monotonic()
    assert consumer.poll_batch(10, 0.3) == []
    assert time.monotonic() - started >= 0.3


def test_closed_clients_refuse_work() -> None:
    transport = EmbeddedTransport()
    producer, consumer = transport.producer(), transport.consumer("g", ["t"])
    producer.close()
    consumer.close()
    with pytest.raises(TransportError):
        producer.send("t", None, b"x")
    with pytest.raises(TransportError):
        consumer.poll_batch(1, 0)
    with pytest.raises(TransportError):
        consumer.commit()
