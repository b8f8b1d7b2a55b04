"""Start a real subprocess, wait (bounded) until it is healthy, and always stop it.

    port = free_port()
    with ManagedProcess(
        ["litellm", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        name="gateway",
        health_url=f"http://127.0.0.1:{port}/health/liveliness",
        env={"LITELLM_MASTER_KEY": "sk-test"},
        log_path=tmp_path / "litellm.log",
    ) as proc:
        ...  # proc.pid, proc.log_text()

The process output (stdout and stderr) goes to a log file, so a chatty server can never block on a
full pipe. `start()` = `spawn()` + `wait_ready()`: it polls `health_url` until it answers with a status
below 500, the process exits, `startup_timeout` passes or `abort()` turns true; the two failures raise
`ProcessStartError` naming the component and carrying the tail of its log. `stop()` sends SIGTERM to the
process group, then SIGKILL after `grace_period` seconds. The launch commands of the components (tool
server, agent, gateway, chat) are in local_stack/components.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

__all__ = ["ManagedProcess", "ProcessStartError", "free_port", "http_status", "wait_for_http"]

POLL_SECONDS = 0.1


class ProcessStartError(RuntimeError):
    """The process exited or never became healthy; names the component, ends with the tail of its log."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str, timeout: float) -> int | None:
    """Status code of a GET to `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URLs we build)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def wait_for_http(url: str, timeout: float = 30.0, interval: float = POLL_SECONDS) -> bool:
    """Poll `url` until it answers with a status below 500; False when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http_status(url, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        if status is not None and status < 500:
            return True
        time.sleep(interval)
    return False


class ManagedProcess:
    """A subprocess with a log file, a bounded health check on start and a guaranteed stop.

    Args:
        argv: the command line (argv[0] is resolved on PATH as usual).
        name: the component's name in messages (default: the program name).
        health_url: GET this URL until it answers < 500; None means "started" once spawned.
        env: extra environment variables, layered over the current environment (unless
            `inherit_env` is False, then only these plus PATH and HOME).
        cwd: working directory (default: the current one).
        log_path: where stdout+stderr go (default: a temporary file that is kept for inspection).
        startup_timeout: seconds to wait for health before failing.
        grace_period: seconds between SIGTERM and SIGKILL on stop.
        inherit_env: whether to start from os.environ.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        health_url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        grace_period: float = 5.0,
        inherit_env: bool = True,
    ) -> None:
        if not argv:
            raise ValueError("argv must not be empty")
        self.argv = [str(part) for part in argv]
        self.name = name or Path(self.argv[0]).name
        self.health_url = health_url
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.grace_period = grace_period
        base: dict[str, str] = (
            dict(os.environ)
            if inherit_env
            else {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        )
        base.update(env or {})
        self.env = base
        if log_path is None:
            handle, temp_name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(handle)
            log_path = temp_name
        self.log_path = Path(log_path)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (only while started)."""
        if self._process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status, or None while running (or never started)."""
        return None if self._process is None else self._process.poll()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Everything the process has written so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> ManagedProcess:
        """Spawn the process and wait until it is healthy; raise ProcessStartError otherwise."""
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for it (`wait_ready()` waits)."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: stop() reaches worker children too
            )
        logger.info(
            "started %s, pid %s: %s (log %s)",
            self.name,
            self._process.pid,
            " ".join(self.argv),
            self.log_path,
        )
        return self

    def wait_ready(self, abort: Callable[[], bool] | None = None) -> bool:
        """Wait (bounded by `startup_timeout`) until the health URL answers; stop the process and raise
        ProcessStartError when it exits or never answers. False when `abort()` turned true first."""
        if self._process is None:
            raise RuntimeError(f"{self.name} is not started: call spawn() first")
        if self.health_url is None:
            return True
        try:
            return self._wait_healthy(self.health_url, abort or (lambda: False))
        except BaseException:
            self.stop()
            raise

    def _exited(self, url: str) -> ProcessStartError | None:
        code = self.returncode
        if code is None:
            return None
        return ProcessStartError(
            self.name,
            f"{self.name} exited with status {code} before {url} answered; log {self.log_path}:\n{self.log_tail()}",
        )

    def _wait_healthy(self, url: str, abort: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if abort():
                return False
            exited = self._exited(url)
            if exited is not None:
                raise exited
            status = http_status(url, timeout=1.0)
            if status is not None and status < 500:
                # Something answered; it is ours only if our process is still alive (a leftover server
                # on the same port would otherwise pass for it).
                exited = self._exited(url)
                if exited is not None:
                    raise exited
                return True
            time.sleep(POLL_SECONDS)
        raise ProcessStartError(
            self.name,
            f"{self.name} did not answer {url} within {self.startup_timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}",
        )

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL after the grace period; return the exit status."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=self.grace_period)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s (pid %s) ignored SIGTERM for %.1fs: killing",
                    self.name,
                    process.pid,
                    self.grace_period,
                )
                self._signal_group(process, signal.SIGKILL)
                process.wait(timeout=self.grace_period)
        else:
            # The leader is gone; make sure no child it spawned (e.g. a uvicorn worker) survives.
            self._signal_group(process, signal.SIGKILL)
        return process.returncode

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
