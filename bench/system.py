"""Start-up and memory: process start to readiness with an empty and a warm Numba cache
(``NUMBA_CACHE_DIR`` pointed at a fresh temporary directory), and the server's peak RSS
while it serves one 64 MiB MSE request (32 MiB input + 32 MiB target, both gradients).

    python -m bench.system [--quick] [--out bench/out/system.json]
"""

from __future__ import annotations

import re
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bench import cli, proc

MIB = 1024 * 1024


def start_to_ready(cache_dir: str) -> dict[str, Any]:
    """Seconds from spawning ``lossd serve`` to its ready line and to its "parallel builds
    loaded" log line (loaded just after ready; until then the serial builds serve every
    size); the server's own report."""
    t = time.perf_counter()
    p, _, _ = proc.lossd("--jit-report", "true", "--log-level", "info", env={"NUMBA_CACHE_DIR": cache_dir})
    seconds = time.perf_counter() - t
    p.wait_for(r"parallel builds loaded", timeout=120)
    all_loaded = time.perf_counter() - t
    ready = next(x for x in p.lines if "ready in" in x)
    p.stop()
    report = next((x for x in p.lines if "numba compilations" in x), "")
    match = re.search(r"warm-up (\d+)", report)
    return {"seconds": seconds, "all_loaded_seconds": all_loaded, "server_line": ready,
            "compilations": int(match.group(1)) if match else None}


def startup(quick: bool, log=print) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="lossd-bench-numba-")
    try:
        cold = start_to_ready(cache)
        log(f"  start to ready, empty cache: {cold['seconds']:.2f}s ({cold['compilations']} compilations)")
        warm = [start_to_ready(cache) for _ in range(2 if quick else 3)]
        med = statistics.median(w["seconds"] for w in warm)
        log(f"  start to ready, warm cache: {med:.2f}s (runs {[round(w['seconds'], 2) for w in warm]}); "
            f"parallel builds loaded at {[round(w['all_loaded_seconds'], 2) for w in warm]} s")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"cold": cold, "warm": warm, "warm_median": med}


def payload_inputs(payload: int = 64 * MIB) -> dict[str, np.ndarray]:
    """An MSE request of ``payload`` bytes: float32 input and target of payload/8 each."""
    rng = np.random.default_rng(3)
    n = payload // 8
    return {"input": rng.standard_normal(n, dtype=np.float32),
            "target": rng.standard_normal(n, dtype=np.float32)}


def peak_growth(p: proc.Proc, target: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """The server's RSS before and its peak RSS while serving one MSE request of ``inputs``
    (peak reset before the call where the kernel allows it)."""
    from lossd_client import LossClient

    payload = sum(a.nbytes for a in inputs.values())
    with LossClient(target, timeout=600) as client:
        client.evaluate("mse", {k: v[:1024] for k, v in inputs.items()})
        time.sleep(0.5)
        idle = proc.rss(p.pid)
        reset = proc.reset_peak(p.pid)
        before = proc.rss(p.pid)
        result = client.evaluate("mse", inputs)
        assert result.grads["input"].shape == inputs["input"].shape
        after = proc.rss(p.pid)
    peak = after["VmHWM"]
    base = before["VmRSS"] if reset else idle["VmRSS"]
    return {"payload": payload, "idle_rss": idle["VmRSS"], "peak_rss": peak, "growth": peak - base,
            "peak_reset": reset, "growth_ratio": (peak - base) / payload, "peak_ratio": peak / payload}


def memory(log=print) -> dict[str, Any]:
    p, target, _ = proc.lossd()
    try:
        out = peak_growth(p, target, payload_inputs())
    finally:
        p.stop()
    log(f"  64 MiB request: idle RSS {out['idle_rss'] / MIB:.0f} MiB, peak {out['peak_rss'] / MIB:.0f} MiB, "
        f"growth {out['growth'] / MIB:.0f} MiB = {out['growth_ratio']:.2f}x payload")
    return out


def run(quick: bool, log=print) -> dict[str, Any]:
    return {"startup": startup(quick, log), "memory": memory(log)}


def main(argv: list[str] | None = None) -> int:
    return cli.main(run, "bench/out/system.json", argv)


if __name__ == "__main__":
    sys.exit(main())
