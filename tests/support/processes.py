"""Real processes for scale-out tests: a private redis-server and `ductwork worker`s.

A private Redis (on a free port, in a temp dir) keeps these tests from touching
the machine's shared Redis, and lets a test kill and restart it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.smtp_server import free_port
from tests.support.stores import service_unavailable

BIN = Path(sys.executable).parent


class Process:
    """A child process whose output lines are collected (for readiness and failure reports)."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.lines: list[str] = []
        self.popen: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        self.lines = []
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        with self.log_path.open("a") as log:
            for line in self.popen.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def wait_for_line(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.popen is None or self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{''.join(self.lines[-40:])}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not print {text!r}:\n{''.join(self.lines[-40:])}"
                )
            time.sleep(0.02)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lease release: the crash ductwork must survive."""
        if self.alive:
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class RedisServer:
    """A private redis-server for one test module."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_unavailable("redis-server is not installed")
        self.port = free_port()
        self.directory = directory
        self.process = Process(
            "redis",
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            os.environ,
            directory / "redis.log",
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process.start().wait_for_line("Ready to accept connections")
        return self

    def kill(self) -> None:
        self.process.kill()


def worker(name: str, env: Mapping[str, str], log_dir: Path) -> Process:
    """A `ductwork worker` process named `name` (its lease owner id)."""
    return Process(
        name,
        [str(BIN / "ductwork"), "worker"],
        {**env, "DUCTWORK_WORKER_ID": name, "PYTHONUNBUFFERED": "1"},
        log_dir / f"{name}.log",
    )
