"""Start benchmark servers as subprocesses and read their announcement lines."""

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Proc:
    proc: subprocess.Popen
    started: float
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 600.0) -> re.Match:
        """The first new output line matching ``pattern``; raises on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited with {self.proc.wait()}: {self.lines[-10:]}")
            match = re.search(pattern, line)
            if match:
                return match
        raise TimeoutError(f"no line matching {pattern!r} in {timeout}s: {self.lines[-10:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start(argv: list[str], env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` (stdout and stderr merged and captured)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    p = Proc(proc, started)
    threading.Thread(target=p._pump, daemon=True).start()
    return p


def lossd(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> tuple[Proc, str, str]:
    """A ``lossd serve`` on free 127.0.0.1 ports: (process, grpc target, http base)."""
    p = start([sys.executable, "-m", "lossd.cli", "serve", "--host", "127.0.0.1", "--grpc-port", "0",
               "--http-port", "0", "--log-level", "warning", "--drain-delay", "0", *args], env)
    target = p.wait_for(r"lossd grpc listening on (\S+)").group(1)
    http = "http://" + p.wait_for(r"lossd http listening on (\S+)").group(1)
    if ready:
        p.wait_for(r"lossd ready in")
    return p, target, http


def echo() -> tuple[Proc, str]:
    p = start([sys.executable, "-m", "bench.echo_server"])
    return p, p.wait_for(r"echo listening on (\S+)").group(1)


def rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of a process (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
