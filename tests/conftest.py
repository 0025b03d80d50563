"""Shared fixtures: a real Kafka broker, the Prometheus binaries, free ports, unique names,
and factories of config files and `slamon` processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.fs as pafs
import pytest
import yaml

from sla.config import SlamonConfig
from slamon.configfile import load_config

REPO = Path(__file__).resolve().parent.parent
BROKER_SH = REPO / "ops" / "kafka" / "broker.sh"
S3PROXY_SH = REPO / "ops" / "s3" / "s3proxy.sh"
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


@dataclass(frozen=True)
class S3Store:
    """A running S3-compatible store (S3Proxy) and the keys it accepts."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    directory: Path


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    """S3Proxy on the local file system, started for this session by ops/s3/s3proxy.sh."""
    directory = tmp_path_factory.mktemp("s3")
    command = ["bash", str(S3PROXY_SH)]
    started = subprocess.run(
        [*command, "start", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=BROKER_COMMAND_TIMEOUT_S,
        check=False,
    )
    if started.returncode:
        pytest.fail(f"S3Proxy did not start: {started.stderr.strip()}")
    try:
        yield S3Store(
            started.stdout.strip(),
            (directory / "access-key-id").read_text().strip(),
            (directory / "secret-access-key").read_text().strip(),
            directory,
        )
    finally:
        subprocess.run([*command, "stop", "--dir", str(directory)], check=False, timeout=60)


@pytest.fixture
def bucket(s3_store: S3Store) -> str:
    """A new, empty bucket on the session's S3-compatible store."""
    name = f"slamon-{uuid.uuid4().hex[:12]}"
    admin = pafs.S3FileSystem(
        access_key=s3_store.access_key_id,
        secret_key=s3_store.secret_access_key,
        endpoint_override=s3_store.endpoint.removeprefix("http://"),
        scheme="http",
        allow_bucket_creation=True,
    )
    admin.create_dir(name)
    return name


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


# Each tool's storage flag; Alertmanager also gets clustering turned off.
SERVER_FLAGS = {
    "prometheus": ["--storage.tsdb.path={data}"],
    "alertmanager": ["--storage.path={data}", "--cluster.listen-address="],
}


@pytest.fixture
def prometheus_server(
    prometheus_binaries: dict[str, Path], tmp_path: Path
) -> Iterator[Callable[[str, Path, int], str]]:
    """Start prometheus or alertmanager (name, config, port) and return its URL once ready.

    Output goes to tmp_path/NAME.log, data to tmp_path/NAME-data; all stop at the end.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, config: Path, port: int) -> str:
        log = tmp_path / f"{name}.log"
        data = tmp_path / f"{name}-data"
        command = [
            str(prometheus_binaries[name]),
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(flag.format(data=data) for flag in SERVER_FLAGS[name]),
        ]
        with log.open("wb") as output:
            processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{name} did not become ready: {log.read_text()}")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="session")
def demo_config() -> Callable[[Path], SlamonConfig]:
    """The demo config with its store and report packs moved into a directory.

    examples/demo.yaml keeps both under var/demo of the working directory, where a pipeline
    built from it in a test would write `make demo`'s store and monthly packs.
    """

    def moved(directory: Path) -> SlamonConfig:
        demo = load_config(REPO / "examples" / "demo.yaml")
        return demo.model_copy(
            update={
                "store": demo.store.model_copy(update={"path": str(directory / "slamon.duckdb")}),
                "reports": demo.reports.model_copy(update={"out_dir": str(directory / "reports")}),
            }
        )

    return moved


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh topic or group name for this test, e.g. `broker-round-trip-3f9c0a1b`."""
    test_name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name.removeprefix("test_"))
    return f"{test_name.strip('-')[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["confluent-kafka", "kafka-python"])
def kafka_client(request: pytest.FixtureRequest) -> str:
    """Each Python Kafka client in turn (`KafkaTransportConfig.client`)."""
    client: str = request.param
    return client


SLAMON = [sys.executable, "-m", "slamon"]


class SlamonProcess:
    """A `slamon` subprocess with its log file, stopped by the fixture at test end."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [*SLAMON, *args], stdout=self._log_file, stderr=subprocess.STDOUT, env=os.environ.copy()
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code once it has finished its batch."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Make sure the process is gone and the log closed."""
        if self.proc.poll() is None:
            self.kill()
        self._log_file.close()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a slamon config dict as YAML and return its path."""
    counter = iter(range(1_000))

    def write(config: dict[str, Any]) -> Path:
        path = tmp_path / f"slamon-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write


@pytest.fixture
def slamon_process(tmp_path: Path) -> Iterator[Callable[..., SlamonProcess]]:
    """Start `slamon ARGS...` subprocesses; all are killed at test end."""
    started: list[SlamonProcess] = []

    def start(*args: str) -> SlamonProcess:
        process = SlamonProcess(list(args), tmp_path / f"slamon-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def exposition_samples(text: str) -> dict[str, float]:
    """The samples of an exposition keyed `name{labels}` exactly as exposed."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def scrape(url: str) -> dict[str, float]:
    """The samples of a /metrics page keyed `name{labels}` exactly as exposed."""
    return exposition_samples(httpx.get(url, timeout=5).text)


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, process: SlamonProcess | None = None
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (httpx.HTTPError, OSError) as error:
            last_error, value = error, None
        if value:
            return value
        if process is not None and process.proc.poll() is not None:
            pytest.fail(f"{what}: slamon exited {process.proc.returncode}:\n{process.output()}")
        time.sleep(0.2)
    detail = f" (last error: {last_error})" if last_error else ""
    log = f"\n{process.output()}" if process is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}{detail}{log}")


@pytest.fixture(name="scrape")
def scrape_fixture() -> Callable[[str], dict[str, float]]:
    """The scrape() helper."""
    return scrape


@pytest.fixture(name="exposition_samples")
def exposition_samples_fixture() -> Callable[[str], dict[str, float]]:
    """The exposition_samples() helper."""
    return exposition_samples


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    """The wait_for() helper."""
    return wait_for


def in_threads(work: Callable[[], object], threads: int) -> list[BaseException]:
    """Run `work` in `threads` threads at once; what they raised, if anything."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported to the test, which asserts on it
            errors.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


@pytest.fixture(name="in_threads")
def in_threads_fixture() -> Callable[[Callable[[], object], int], list[BaseException]]:
    """The in_threads() helper."""
    return in_threads


@dataclass(frozen=True)
class EndToEnd:
    """What an end-to-end test drives `slamon` processes with, as one fixture."""

    free_port: Callable[[], int]
    write_config: Callable[[dict[str, Any]], Path]
    slamon_process: Callable[..., SlamonProcess]
    scrape: Callable[[str], dict[str, float]]
    wait_for: Callable[..., Any]


@pytest.fixture
def e2e(
    write_config: Callable[[dict[str, Any]], Path],
    slamon_process: Callable[..., SlamonProcess],
) -> EndToEnd:
    """Free ports, config files, `slamon` processes killed at test end, scrapes and polling."""
    return EndToEnd(free_port, write_config, slamon_process, scrape, wait_for)
