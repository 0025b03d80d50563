"""Shared fixtures: a real Kafka broker, the Prometheus binaries, free ports and unique names."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BROKER_SH = REPO / "ops" / "kafka" / "broker.sh"
PROMETHEUS_INSTALL = "ops/prometheus/install.sh"
# A cold start fetches the Kafka jars with Maven first.
BROKER_COMMAND_TIMEOUT_S = 300


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """A broker run by ops/kafka/broker.sh in its own data dir; restarts keep port and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port: int | None = None

    @property
    def bootstrap(self) -> str:
        """The host:port clients connect to; only known once started."""
        if self.port is None:
            raise RuntimeError(f"the broker in {self.data_dir} was never started")
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start (formatting the dir on first use) and return the bootstrap address."""
        port_args = [] if self.port is None else ["--port", str(self.port)]
        bootstrap = self._broker_sh("start", *port_args).splitlines()[-1]
        self.port = int(bootstrap.rsplit(":", 1)[1])
        return bootstrap

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait until it is gone."""
        self._broker_sh("stop")

    def _broker_sh(self, command: str, *args: str) -> str:
        try:
            done = subprocess.run(
                ["bash", str(BROKER_SH), command, "--dir", str(self.data_dir), *args],
                capture_output=True,
                text=True,
                timeout=BROKER_COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"broker.sh {command} hung for {exc.timeout}s (dir {self.data_dir})")
        if done.returncode != 0:
            # fail, never skip: a Kafka test that cannot reach a broker must not pass in CI.
            pytest.fail(
                f"broker.sh {command} failed with exit code {done.returncode}:\n{done.stderr}"
            )
        return done.stdout


def _accepts_connections(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a Kafka broker: $SLAMON_KAFKA_BOOTSTRAP, or one started for this session."""
    configured = os.environ.get("SLAMON_KAFKA_BOOTSTRAP")
    if configured:
        if not _accepts_connections(configured):
            pytest.fail(f"SLAMON_KAFKA_BOOTSTRAP={configured} does not accept connections")
        yield configured
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"))
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A started broker of this test alone, for tests that stop and restart it."""
    broker = LocalBroker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def prometheus_binaries() -> dict[str, Path]:
    """Paths of prometheus, promtool, alertmanager and amtool, keyed by those names."""
    found: dict[str, Path] = {}
    for name in ("prometheus", "promtool", "alertmanager", "amtool"):
        # Debian installs alertmanager as prometheus-alertmanager.
        path = shutil.which(name) or shutil.which(f"prometheus-{name}")
        if path is None:
            pytest.fail(f"{name} is not on PATH: run {PROMETHEUS_INSTALL} (or `make prometheus`)")
        found[name] = Path(path)
    return found


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """The free_port() helper, for tests that start servers."""
    return free_port


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh topic or group name for this test, e.g. `broker-round-trip-3f9c0a1b`."""
    test_name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name.removeprefix("test_"))
    return f"{test_name.strip('-')[:40]}-{uuid.uuid4().hex[:8]}"
