"""Kernel benchmark: lossd vs PyTorch eager (forward + autograd backward) vs vectorised
NumPy, float32, at 1 and 2 threads, plus a STREAM-style triad in Numba as the bandwidth
ceiling of elementwise losses.

Each contender runs in its own worker process per thread count (thread pools of Numba,
PyTorch and BLAS never share a process); the parent sends one measurement at a time to
one worker, rotating the order of contenders every round, so only one contender runs at
any moment and slow drifts of this shared machine hit all of them alike.

Before a case is timed, every contender computes it once and its loss and gradients are
compared with lossd's (``bench.agree``); a contender that disagrees is reported, not timed.
Each worker builds a case's inputs once and keeps them until the next case.

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

from bench import agree, cases

PREFIX = "@@"


# ----------------------------------------------------------------------------- worker side


def _timed(fn, budget: float, min_samples: int, first: float | None, max_samples: int = 200) -> list[float]:
    """Per-call seconds: batches of m calls (m makes a batch >= 0.2 ms), within ``budget``.

    ``first``: the duration of an earlier untimed call of ``fn`` (the agreement check); None
    makes one untimed warm-up call here.
    """
    if first is None:
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
    """One contender in one process: builds each case's inputs once and times calls.

    Per case it keeps, for each mode, ``(fn, extract, first)``: ``fn()`` the timed call,
    ``extract(fn())`` its (loss, {name: gradient}) for the agreement check, and ``first`` the
    duration of the first call (None before any).
    """

    def __init__(self, contender: str, threads: int) -> None:
        self.contender = contender
        self.threads = threads
        self.case: str | None = None
        self.inputs: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None
        self.entries: dict[str, list[Any]] = {}
        if contender == "torch":
            import torch

            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
        if contender == "lossd":
            # lossd.kernels.jit first: it sets the server's threading layer and OMP_WAIT_POLICY,
            # which the OpenMP runtime reads once, when set_num_threads loads it
            import numba

            from lossd import warmup  # noqa: F401 - lossd.kernels.jit, the request path

            numba.set_num_threads(threads)

    def _entry(self, loss: str, dims: dict[str, int], grads: list[str], mode: str) -> list[Any]:
        case = json.dumps([loss, dims, grads])
        if case != self.case:
            self.entries.clear()  # one case at a time: large inputs are hundreds of MB
            self.inputs = None
            self.inputs = cases.build(loss, dims)
            self.case = case
        if mode not in self.entries:
            assert self.inputs is not None
            self.entries[mode] = [*self._make(loss, *self.inputs, grads, mode), None]
        return self.entries[mode]

    def _make(self, loss: str, inputs: dict[str, np.ndarray], params: dict[str, Any], grads: list[str],
              mode: str):
        if self.contender == "lossd":
            from lossd.core.evaluate import evaluate, run
            from lossd.core.validation import prepare

            if mode == "full":
                def fn():
                    return evaluate(loss, inputs, params, grads=grads)
            else:
                call = prepare(loss, inputs, params, grads)

                def fn():
                    return run(call)

            return fn, lambda r: (r.loss, r.grads)
        if self.contender == "torch":
            from bench.contenders import torch_step

            fn, leaves = torch_step(loss, inputs, params, grads)

            def extract(value):
                return float(value.detach()), {g: leaf.grad.numpy() for g, leaf in leaves.items()}
            return fn, extract
        from bench.contenders import numpy_loss

        f = numpy_loss(loss)
        wanted = frozenset(grads)

        def fn():
            return f(inputs, params, wanted)
        return fn, lambda r: r

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op in ("run", "check"):
            entry = self._entry(cmd["loss"], cmd["dims"], cmd["grads"], cmd.get("mode", "kernel"))
            fn, extract, first = entry
            if op == "check":
                t = time.perf_counter()
                out = fn()
                entry[2] = time.perf_counter() - t
                return {**agree.fingerprint(*extract(out)), "seconds": entry[2]}
            if first is None and cmd.get("cold_ok"):
                first = 1.0  # a heavy case: no warm-up call, one call per sample
            samples = _timed(fn, cmd["budget"], cmd["min_samples"], first)
            entry[2] = first if first is not None else samples[0]
            return {"samples": samples}
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
        try:
            reply = worker.handle(cmd)
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a skip
            reply = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out.write(PREFIX + json.dumps(reply) + "\n")
        out.flush()


# ----------------------------------------------------------------------------- parent side


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


def tree_env(threads: int, tree: str | None = None, cache: str | None = None) -> dict[str, str]:
    """:func:`thread_env` for a worker that imports lossd from another checkout ``tree``
    (its ``service/`` and ``client/`` first on PYTHONPATH; bench/ stays this tree's), with
    its own Numba cache directory ``cache`` (the A/B scripts compare checkouts)."""
    env = thread_env(threads)
    if tree:
        paths = [os.path.join(tree, "service"), os.path.join(tree, "client"), ROOT]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    return env


class Remote:
    """A worker process (``python -m <module> --worker <contender> --threads <n>``) driven
    over its stdin/stdout: one JSON command line in, one ``PREFIX``-marked JSON line out."""

    def __init__(self, contender: str, threads: int, module: str = "bench.kernels",
                 env: dict[str, str] | None = None) -> None:
        self.contender = contender
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--worker", contender, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=env if env is not None else thread_env(threads), cwd=ROOT)
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
            self.proc.stdin.close()
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


def check_case(workers: dict[str, Remote], names: list[tuple[str, str]],
               cmd: dict[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """Run every contender once on the case and compare it with lossd's kernel (the reference).

    Returns ({name: why it is not timed}, {name: seconds of its call}); a contender is not
    timed after a failure or a mismatch beyond ``agree.RTOL``.
    """
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    ref = workers["lossd"].ask({**cmd, "op": "check", "mode": "kernel"}) if "lossd" in workers else \
        {"error": "no lossd worker"}
    for c, mode in names:
        name = c if mode == "kernel" else "lossd_full"
        if "error" in ref:
            errors[name] = ref["error"] if name == "lossd" else "not checked: lossd failed"
            continue
        reply = ref if name == "lossd" else workers[c].ask({**cmd, "op": "check", "mode": mode})
        if "error" in reply:
            errors[name] = reply["error"]
            continue
        diff = agree.compare(ref, reply)
        if diff:
            errors[name] = f"mismatch vs lossd (rtol {agree.RTOL:g}), not timed: {diff}"
        seconds[name] = reply["seconds"]
    return errors, seconds


#: quick mode: a large case whose lossd call (in its check) takes longer has no +validate figure
HEAVY_SECONDS = 0.3


def timing_plan(quick: bool, size: str) -> tuple[float, int]:
    """(budget seconds per request, minimum samples per request) of one case size."""
    large = size == "large"
    budget = (0.12 if large else 0.04) * (0.5 if quick else 1.0)
    return budget, (1 if large else 5)


def case_order(workers: dict[str, Remote], full: bool) -> list[tuple[str, str]]:
    """(worker, mode) pairs of one case: the other contenders, lossd's kernel, lossd's evaluate."""
    lossd = [("lossd", "kernel")] + ([("lossd", "full")] if full else [])
    return [(c, "kernel") for c in workers if c != "lossd"] + [m for m in lossd if "lossd" in workers]


class KernelRun:
    """The measurements of one ``run``: cases x thread counts, rows and notes in ``result``.

    Quick mode at the large size: each case is checked at the first thread count only, and
    that check call (lossd first, then the others; every worker has just run the same loss
    at the medium size) is the first timed sample of round 0; at the other thread counts
    there is no check and no warm-up call, and each sample is one call. A large case whose
    lossd call takes more than HEAVY_SECONDS has no ``+validate`` figure in quick mode
    (validation is a negligible part of it).
    """

    def __init__(self, quick: bool, threads: list[int], log) -> None:
        self.quick, self.threads, self.log = quick, threads, log
        self.rounds = 2 if quick else 3
        self.checked: dict[tuple[str, str], dict[str, Any]] = {}  # (loss, label) -> errors, heavy
        self.result: dict[str, Any] = {"rows": [], "triad": {}, "skipped": {}, "notes": {},
                                       "rounds": self.rounds, "quick": quick, "case_seconds": {},
                                       "heavy": []}

    def _check(self, workers: dict[str, Remote], loss: str, size: str, label: str, t: int,
               cmd: dict[str, Any]) -> tuple[dict[str, str], bool, dict[str, float]]:
        """(errors, heavy, {name: seconds of the check call when it is a timed sample}) of the
        case, checking it unless quick mode already did at the large size."""
        seen = self.checked.get((loss, label))
        quick_large = self.quick and size == "large"
        if seen and quick_large:
            cmd["cold_ok"] = True
            return dict(seen["errors"]), seen["heavy"], {}
        errors, seconds = check_case(workers, case_order(workers, t == max(self.threads)), cmd)
        heavy = seen["heavy"] if seen else quick_large and seconds.get("lossd", 0.0) > HEAVY_SECONDS
        if not seen:
            self.checked[(loss, label)] = {"errors": dict(errors), "heavy": heavy}
            if heavy:
                self.result["heavy"].append(f"{loss} {label}")
        return errors, heavy, (seconds if quick_large else {})

    def case(self, workers: dict[str, Remote], case: cases.Case, size: str, label: str,
             dims: dict[str, int], t: int) -> None:
        """Check, then time every contender of one case in ``rounds`` rotating rounds."""
        started = time.perf_counter()
        loss = case.loss
        grads = grads_of(loss, dims)
        budget, min_samples = timing_plan(self.quick, size)
        cmd = {"loss": loss, "dims": dims, "grads": grads}
        errors, heavy, first = self._check(workers, loss, size, label, t, cmd)
        order = case_order(workers, t == max(self.threads) and not heavy)
        names = {c if mode == "kernel" else "lossd_full" for c, mode in order}
        samples: dict[str, list[float]] = {n: [v] for n, v in first.items() if n in names and n not in errors}
        for r in range(1 if first else 0, self.rounds):
            k = r % len(order)
            for c, mode in order[k:] + order[:k]:
                name = c if mode == "kernel" else "lossd_full"
                if name in errors:
                    continue
                reply = workers[c].ask({**cmd, "op": "run", "budget": budget, "min_samples": min_samples,
                                        "mode": mode})
                if "error" in reply:
                    errors[name] = reply["error"]
                    continue
                samples.setdefault(name, []).extend(reply["samples"])
        med = {}
        for name, s in samples.items():
            if name in errors:
                continue
            row = {"loss": loss, "size": size, "label": label, "threads": t, "contender": name,
                   **summarize(s)}
            if case.elementwise and size == "large":
                inputs, _ = cases.build(loss, {"n": 8})
                row["bytes"] = (sum(v.dtype.itemsize for v in inputs.values()) + 4 * len(grads)) * dims["n"]
            self.result["rows"].append(row)
            med[name] = row["median"]
        for name, err in errors.items():
            self.result["notes"][f"{loss} {label} {name}@{t}"] = err
        seconds = time.perf_counter() - started
        self.result["case_seconds"][f"{loss} {label} @{t}"] = round(seconds, 2)
        self.log(f"  {t}t {loss:<26} {label:<22} " + "  ".join(f"{n}={v * 1e3:.3f}ms" for n, v in med.items())
                 + f"  [{seconds:.1f} s]" + (f"  errors={errors}" if errors else ""))

    def thread_count(self, t: int, losses: list[str]) -> None:
        """Every case at ``t`` threads, in fresh worker processes (one per contender)."""
        workers = {c: Remote(c, t) for c in ("lossd", "torch", "numpy")}
        for c, w in list(workers.items()):
            if "error" in w.ready:
                self.result["notes"][f"{c}@{t}"] = w.ready["error"]
                self.log(f"  worker {c} ({t} threads) failed to start: {w.ready['error']}")
                del workers[c]
        try:
            if "lossd" in workers:
                reply = workers["lossd"].ask({"op": "triad", "n": 20_000_000,
                                              "repeats": 5 if self.quick else 10})
                if "bw" in reply:
                    bw = statistics.median(reply["bw"])
                    self.result["triad"][str(t)] = {"median": bw, "max": max(reply["bw"])}
                    self.log(f"  triad {t} threads: {bw / 1e9:.1f} GB/s median")
            for loss in losses:
                case = cases.CASES[loss]
                if case.note:
                    self.result["notes"][loss] = case.note
                for size, label, dims in case.variants():
                    self.case(workers, case, size, label, dims, t)
        finally:
            for w in workers.values():
                w.close()


def run(quick: bool, threads: list[int], only: list[str] | None, log=print) -> dict[str, Any]:
    """Section 1 of RESULTS.md: every loss with a case, every contender, every thread count."""
    from lossd.losses.registry import BY_ID

    have, missing = cases.registered()
    if only:
        have = [loss for loss in have if loss in only]
    measurement = KernelRun(quick, threads, log)
    measurement.result["ids"] = have + missing if not only else sorted(set(have) | set(only))
    skipped = measurement.result["skipped"]
    skipped.update({m: "no input builder in bench/cases.py" for m in missing})
    skipped.update({loss: "not in the registry yet" for loss in cases.CASES if loss not in BY_ID})
    for t in threads:
        measurement.thread_count(t, have)
    return measurement.result


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
