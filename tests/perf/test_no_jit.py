"""No Numba compilation on any request path.

A real server (``--jit-report``) serves a request of every loss in both float dtypes:
the loss's own examples with every reduction and several gradient selections, plus the
benchmark's inputs at a serial and a parallel size (the threshold is 4096 here), with
int32 labels too. Every call must succeed (an eager kernel without the right signature
raises instead of compiling: that would be INTERNAL), and the server's shutdown line
must count no compilation after ready, and none in the server process at all when
there is more than one core: a cold cache is compiled by the warm-up's worker processes
(lossd.precompile) and the server loads everything from it. The start-to-ready time (warm cache: the session
server has already compiled everything) is recorded as a property, never asserted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from bench import cases
from lossd import precompile
from lossd.losses.registry import SPECS
from lossd_client import LossClient
from tests.serverproc import start_server

REPORT = re.compile(r"lossd numba compilations: warm-up (\d+), after ready (\d+) "
                    r"\(signatures (\d+) -> (\d+), deferred parallel (\d+)\)")

#: sizes around the parallel threshold (4096 elements) for each input family.
PARALLEL_DIMS = {"ew": {"n": 5000}, "rows": {"n": 64, "d": 100}, "triplet": {"n": 64, "d": 100},
                 "ce": {"n": 500, "c": 10}, "face": {"n": 64, "d": 16, "c": 300}, "attr": {"n": 200, "a": 40},
                 "center": {"n": 64, "d": 100, "c": 10}, "pairwise": {"n": 64, "d": 100},
                 "image": {"n": 1, "c": 3, "h": 40, "w": 40}}


def _requests() -> list[tuple[str, dict[str, Any], dict[str, Any], Any]]:
    """(loss, inputs, params, grads) covering every loss, dtype, reduction and grads shape."""
    out = []
    for spec in SPECS:
        names = {p.name for p in spec.all_params}
        reduction = next(p for p in spec.all_params if p.name == "reduction")
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            samples = list(spec.examples(dtype))
            case = cases.CASES.get(spec.id)
            if case is not None:
                small = cases.SIZES[case.family][0][1]
                for dims in (small, PARALLEL_DIMS[case.family]):
                    inputs, params = cases.build(spec.id, dims, dtype)
                    samples.append((inputs, {k: v for k, v in params.items() if k in names}))
                    narrow = {k: (v.astype(np.int32) if v.dtype == np.int64 else v)
                              for k, v in inputs.items()}
                    samples.append((narrow, params))
            for inputs, params in samples:
                diff = [i.name for i in spec.inputs if i.differentiable and i.name in inputs
                        and np.asarray(inputs[i.name]).dtype.kind == "f"]
                for red in reduction.choices:
                    out.append((spec.id, inputs, {**params, "reduction": red}, None))
                out.append((spec.id, inputs, params, []))
                for name in diff:
                    out.append((spec.id, inputs, params, [name]))
    return out


@pytest.fixture(scope="module")
def reporting_server():
    server = start_server("--jit-report", "true", "--drain-delay", "0",
                          env={"LOSSD_PARALLEL_THRESHOLD": "4096"})
    yield server
    server.terminate()


def test_serving_every_loss_and_dtype_compiles_nothing(reporting_server, record_property):
    ready = next(line for line in reporting_server.lines if "ready in" in line)
    seconds = float(re.search(r"ready in ([\d.]+)s", ready).group(1))
    record_property("start_to_ready_seconds_warm_cache", seconds)
    print(f"\n{ready}")
    requests = _requests()
    failures = []
    with LossClient(reporting_server.grpc_target, timeout=120) as client:
        for loss, inputs, params, grads in requests:
            try:
                result = client.evaluate(loss, inputs, params, grads=grads)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{loss} {params} grads={grads} "
                                f"{ {k: (v.shape, v.dtype.name) for k, v in inputs.items()} }: {exc}")
                continue
            assert result.loss_id == loss
    assert not failures, f"{len(failures)} of {len(requests)} requests failed:\n" + "\n".join(failures[:20])
    assert reporting_server.terminate() == 0
    line = next((x for x in reporting_server.lines if "numba compilations" in x), None)
    assert line is not None, reporting_server.lines[-10:]
    warmup, after, sig_ready, sig_end, deferred = (int(g) for g in REPORT.search(line).groups())
    print(line)
    if precompile.default_jobs() > 1:  # a cold cache was compiled in worker processes
        assert warmup == 0, line
        assert deferred > 0, line  # the parallel builds loaded after ready, from the cache
    assert after == 0, line
    assert sig_end == sig_ready + deferred, line
    assert sig_ready > 0
    assert len({spec.id for spec in SPECS}) == len({r[0] for r in requests})


def test_the_counter_sees_a_compilation():
    """The observation above is not vacuous: a fresh function's compile is counted."""
    import numba
    from numba.core import event

    from lossd import jitwatch

    counter = jitwatch.install()
    try:
        counter.mark_ready()

        @numba.njit(cache=False)
        def _fresh(x):  # pragma: no cover - compiled
            return x * 3 + 1

        assert _fresh(2) == 7
        assert REPORT.search(counter.report()).group(2) == "1"
        assert "_fresh" in counter.report()
    finally:
        event.unregister("numba:compile", counter)
