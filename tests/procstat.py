"""Process statistics the tests read from /proc (Linux)."""

from __future__ import annotations


def rss_bytes(pid: int) -> int:
    """VmRSS of process ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")
