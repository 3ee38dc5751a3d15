"""Kernel benchmark: lossd vs PyTorch eager (forward + autograd backward) vs vectorised
NumPy, float32, at 1 and 2 threads, plus a STREAM-style triad in Numba as the bandwidth
ceiling of elementwise losses.

Each contender runs in its own worker process per thread count (thread pools of Numba,
PyTorch and BLAS never share a process); the parent sends one measurement at a time to
one worker, rotating the order of contenders every round, so only one contender runs at
any moment and slow drifts of this shared machine hit all of them alike.

    python -m bench.kernels [--quick] [--threads 1,2] [--losses mse,arcface] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench import cases

PREFIX = "@@"


# ----------------------------------------------------------------------------- worker side


def _timed(fn, budget: float, min_samples: int, max_samples: int = 200) -> list[float]:
    """Per-call seconds: batches of m calls (m makes a batch >= 0.2 ms), within ``budget``."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    m = max(1, int(2e-4 / max(first, 1e-7)))
    samples: list[float] = []
    begin = time.perf_counter()
    while len(samples) < min_samples or (time.perf_counter() - begin < budget and len(samples) < max_samples):
        t = time.perf_counter()
        for _ in range(m):
            fn()
        samples.append((time.perf_counter() - t) / m)
    return samples


class Worker:
    """One contender in one process: builds inputs (cached) and times calls."""

    def __init__(self, contender: str, threads: int) -> None:
        self.contender = contender
        self.threads = threads
        self.cache: dict[str, Any] = {}
        if contender == "torch":
            import torch

            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
        if contender == "lossd":
            import numba

            numba.set_num_threads(threads)
            from lossd import warmup  # noqa: F401 - imports every kernel (eager signatures)

    def _fn(self, loss: str, dims: dict[str, int], grads: list[str], mode: str):
        key = json.dumps([loss, dims, grads, mode])
        if key in self.cache:
            return self.cache[key]
        self.cache.clear()  # one case at a time: large inputs are hundreds of MB
        inputs, params = cases.build(loss, dims)
        if self.contender == "lossd":
            from lossd.core.evaluate import evaluate, run
            from lossd.core.validation import prepare

            if mode == "full":
                def fn():
                    evaluate(loss, inputs, params, grads=grads)
            else:
                call = prepare(loss, inputs, params, grads)

                def fn():
                    run(call)
        elif self.contender == "torch":
            import torch

            from bench.contenders import moon_weights, torch_loss

            f = torch_loss(loss)
            tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
            if loss == "moon":
                tensors["_w"] = torch.from_numpy(moon_weights(inputs["labels"]).astype(np.float32))
            leaves = [tensors[g].requires_grad_() for g in grads]

            def fn():
                for leaf in leaves:
                    leaf.grad = None
                f(tensors, params).backward()
        else:
            from bench.contenders import numpy_loss

            f = numpy_loss(loss)
            wanted = frozenset(grads)

            def fn():
                f(inputs, params, wanted)
        self.cache[key] = fn
        return fn

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "run":
            fn = self._fn(cmd["loss"], cmd["dims"], cmd["grads"], cmd.get("mode", "kernel"))
            return {"samples": _timed(fn, cmd["budget"], cmd["min_samples"])}
        if op == "triad":
            return {"bw": triad(cmd["n"], cmd["repeats"])}
        raise ValueError(f"unknown op {op}")


def triad(n: int, repeats: int) -> list[float]:
    """STREAM triad a = b + s c in Numba (parallel, float64); bytes/s per repeat (3 arrays)."""
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=False)
    def _triad(a, b, c, s):  # pragma: no cover - compiled
        for i in numba.prange(a.size):
            a[i] = b[i] + s * c[i]

    a, b, c = np.zeros(n), np.ones(n), np.full(n, 2.0)
    _triad(a, b, c, 3.0)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        _triad(a, b, c, 3.0)
        out.append(3 * 8 * n / (time.perf_counter() - t))
    return out


def worker_main(contender: str, threads: int) -> None:
    worker = Worker(contender, threads)
    out = sys.stdout
    out.write(PREFIX + json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            reply = worker.handle(cmd)
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a skip
            reply = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out.write(PREFIX + json.dumps(reply) + "\n")
        out.flush()


# ----------------------------------------------------------------------------- parent side


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


class Remote:
    """A worker process driven over its stdin/stdout."""

    def __init__(self, contender: str, threads: int) -> None:
        self.contender = contender
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.kernels", "--worker", contender, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=thread_env(threads),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX):])
        return {"error": f"worker {self.contender} exited with {self.proc.wait()}"}

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if self.proc.poll() is not None:
            return {"error": f"worker {self.contender} is not running"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def summarize(samples: list[float]) -> dict[str, float]:
    q = np.percentile(samples, [25, 50, 75])
    return {"median": float(q[1]), "p25": float(q[0]), "p75": float(q[2]), "n": len(samples)}


def grads_of(loss: str, dims: dict[str, int]) -> list[str]:
    """The inputs every contender differentiates (the case's list, or the spec's)."""
    from lossd.losses.registry import BY_ID

    case = cases.CASES[loss]
    if case.grads is not None:
        return list(case.grads)
    inputs, _ = cases.build(loss, {k: min(v, 4) for k, v in dims.items()})
    return [i.name for i in BY_ID[loss].inputs
            if i.differentiable and i.name in inputs and inputs[i.name].dtype.kind == "f"]


def run(quick: bool, threads: list[int], only: list[str] | None, log=print) -> dict[str, Any]:
    have, missing = cases.registered()
    if only:
        have = [loss for loss in have if loss in only]
    rounds = 2 if quick else 3
    contenders = ["lossd", "torch", "numpy"]
    result: dict[str, Any] = {"rows": [], "triad": {}, "skipped": {m: "no input builder in bench/cases.py"
                                                                     for m in missing},
                              "notes": {}, "rounds": rounds, "quick": quick}
    for loss in cases.CASES:
        from lossd.losses.registry import BY_ID

        if loss not in BY_ID:
            result["skipped"][loss] = "not in the registry yet"
    for t in threads:
        workers = {c: Remote(c, t) for c in contenders}
        for c, w in list(workers.items()):
            if "error" in w.ready:
                result["notes"][f"{c}@{t}"] = w.ready["error"]
                log(f"  worker {c} ({t} threads) failed to start: {w.ready['error']}")
                del workers[c]
        if "lossd" in workers:
            bw = workers["lossd"].ask({"op": "triad", "n": 20_000_000, "repeats": 10 if not quick else 5})
            if "bw" in bw:
                result["triad"][str(t)] = {"median": statistics.median(bw["bw"]), "max": max(bw["bw"])}
                log(f"  triad {t} threads: {statistics.median(bw['bw']) / 1e9:.1f} GB/s median")
        for loss in have:
            case = cases.CASES[loss]
            if case.note:
                result["notes"][loss] = case.note
            for size, label, dims in case.variants():
                grads = grads_of(loss, dims)
                large = size == "large"
                budget = (0.12 if large else 0.04) * (0.5 if quick else 1.0)
                min_samples = 1 if (large and (quick or case.family == "face")) else (2 if large else 5)
                samples: dict[str, list[float]] = {c: [] for c in workers}
                errors: dict[str, str] = {}
                modes = [("lossd", "kernel")] + ([("lossd", "full")] if t == max(threads) else [])
                order = [(c, "kernel") for c in workers if c != "lossd"] + \
                    [m for m in modes if "lossd" in workers]
                for r in range(rounds):
                    k = r % len(order)
                    for c, mode in order[k:] + order[:k]:
                        name = c if mode == "kernel" else "lossd_full"
                        if name in errors:
                            continue
                        reply = workers[c].ask({"op": "run", "loss": loss, "dims": dims, "grads": grads,
                                                "budget": budget, "min_samples": min_samples, "mode": mode})
                        if "error" in reply:
                            errors[name] = reply["error"]
                            continue
                        samples.setdefault(name, []).extend(reply["samples"])
                for name, s in samples.items():
                    if not s:
                        continue
                    row = {"loss": loss, "size": size, "label": label, "threads": t, "contender": name,
                           **summarize(s)}
                    if case.elementwise and size == "large":
                        inputs, _ = cases.build(loss, {"n": 8})
                        per = sum(v.dtype.itemsize for v in inputs.values()) + 4 * len(grads)
                        row["bytes"] = per * dims["n"]
                    result["rows"].append(row)
                for name, err in errors.items():
                    result["notes"][f"{loss} {label} {name}@{t}"] = err
                med = {n: summarize(s)["median"] for n, s in samples.items() if s}
                log(f"  {t}t {loss:<26} {label:<22} " + "  ".join(
                    f"{n}={v * 1e3:.3f}ms" for n, v in med.items())
                    + (f"  errors={errors}" if errors else ""))
        for w in workers.values():
            w.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--losses", default="")
    parser.add_argument("--out", default="bench/out/kernels.json")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, int(args.threads))
        return 0
    result = run(args.quick, [int(t) for t in args.threads.split(",")],
                 [x for x in args.losses.split(",") if x] or None)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
