"""Factories for end-to-end tests: config files and slamon processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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


def scrape(url: str) -> dict[str, float]:
    """The samples of a /metrics page keyed `name{labels}` exactly as exposed."""
    samples: dict[str, float] = {}
    for line in httpx.get(url, timeout=5).text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


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


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    """The wait_for() helper."""
    return wait_for
