"""Fixtures shared by the collector tests: a running receiver over an embedded transport."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from collectors.publisher import EventPublisher
from collectors.receiver import ReceiverServer, Webhook
from pipeline.transport import EmbeddedTransport
from sla.config import ReceiversConfig
from sla.events import FAMILIES, CloudEvent, parse_event, topic_for


@dataclass
class RunningReceiver:
    """A ReceiverServer on a free port, publishing into an embedded transport."""

    url: str
    transport: EmbeddedTransport
    topics: list[str]

    def stored(self) -> list[CloudEvent]:
        """Every event published so far, read by a fresh consumer group."""
        consumer = self.transport.consumer(f"check-{id(self)}-{threading.get_ident()}", self.topics)
        messages = consumer.poll_batch(100, timeout_s=0.2)
        consumer.close()
        return [parse_event(message.value) for message in messages]


StartReceiver = Callable[[ReceiversConfig, Sequence[Webhook], datetime, str], RunningReceiver]


@pytest.fixture
def start_receiver() -> Iterator[StartReceiver]:
    """Start receivers (config, webhooks, fixed receive time, topic prefix); stopped at the end."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(
        config: ReceiversConfig, webhooks: Sequence[Webhook], received: datetime, prefix: str
    ) -> RunningReceiver:
        transport = EmbeddedTransport()
        topics = [topic_for(prefix, family) for family in FAMILIES]
        transport.ensure_topics(topics)
        publisher = EventPublisher(transport.producer(), prefix)
        server = ReceiverServer(
            config, webhooks, publisher.publish_durably, ready=lambda: True, clock=lambda: received
        )
        stop, bound, ports = threading.Event(), threading.Event(), list[int]()

        def on_listening(port: int) -> None:
            ports.append(port)
            bound.set()

        thread = threading.Thread(target=server.run, args=(stop, on_listening), daemon=True)
        thread.start()
        assert bound.wait(10), "the receiver did not start listening"
        stops.append((stop, thread))
        return RunningReceiver(f"http://127.0.0.1:{ports[0]}", transport, topics)

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(10)


@pytest.fixture
def tls_context(tmp_path: Path) -> Callable[[int], ssl.SSLContext]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, valid N days."""

    def make(days: int) -> ssl.SSLContext:
        cert, key = tmp_path / f"cert-{days}.pem", tmp_path / f"key-{days}.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
             "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    return make


@pytest.fixture
def serve() -> Iterator[Callable[[ThreadingHTTPServer], ThreadingHTTPServer]]:
    """Serve HTTP servers on background threads; all are shut down at the end."""
    servers: list[ThreadingHTTPServer] = []

    def start(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
