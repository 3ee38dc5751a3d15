"""Start real lossd servers as subprocesses on free 127.0.0.1 ports (tests only)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

LINE = re.compile(r"lossd (grpc|http) listening on (\S+)")


@dataclass
class ServerProcess:
    """A running ``lossd serve`` with its addresses and captured output lines."""

    proc: subprocess.Popen
    grpc_target: str = ""
    http_base: str = ""
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str] = field(default_factory=queue.Queue)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put("")

    def wait_for(self, pattern: str, timeout: float = 180.0) -> str:
        """The first new stdout line matching ``pattern`` (regex)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line == "" and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.lines[-20:]}")
            match = LINE.search(line)
            if match:
                if match.group(1) == "grpc":
                    self.grpc_target = match.group(2)
                else:
                    self.http_base = "http://" + match.group(2)
            if re.search(pattern, line):
                return line
        raise TimeoutError(f"no line matching {pattern!r} in {timeout}s: {self.lines[-20:]}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def start_server(*args: str, env: dict[str, str] | None = None, wait_ready: bool = True,
                 stderr=subprocess.DEVNULL) -> ServerProcess:
    """``lossd serve --grpc-port 0 --http-port 0 ARGS`` on 127.0.0.1; waits for readiness."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossd.cli", "serve", "--host", "127.0.0.1", "--grpc-port", "0",
         "--http-port", "0", *args],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env=full_env)
    server = ServerProcess(proc)
    threading.Thread(target=server._pump, daemon=True).start()
    server.wait_for("http listening")
    if wait_ready:
        server.wait_for("ready in")
    return server
